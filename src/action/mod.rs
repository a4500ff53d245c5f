//! The GitHub Actions edge: inputs, workflow commands, step outputs, job summary, secret masking.
//!
//! Lives in the binary so the library never depends on GitHub. Hand-written rather than taken
//! from a toolkit crate: the few that exist get the escaping wrong (unescaped `%`/CR/LF and
//! properties, `::set-output` written into `GITHUB_OUTPUT`), and the escaping is the whole point.

pub mod check;
pub mod commands;
pub mod inputs;
pub mod outputs;
pub mod secrets;
pub mod spec;
pub mod summary;

use std::io::Write;

pub use commands::{AnnotationProps, Commands, Mode};
pub use inputs::{pem_or_path, read_inputs, InputError, Inputs};
pub use outputs::{Delivery, OutputError, Outputs};
pub use secrets::Secrets;
pub use summary::render_sign_summary;

pub mod run;

/// Commands and output files together, so that a skipped output (not on a runner) is noted in
/// the debug log rather than failing or vanishing silently.
pub struct Action<W: Write> {
    pub commands: Commands<W>,
    pub outputs: Outputs,
}

impl<W: Write> Action<W> {
    pub fn new(commands: Commands<W>, outputs: Outputs) -> Self {
        Action { commands, outputs }
    }

    pub fn set_output(&mut self, name: &str, value: &str) -> anyhow::Result<()> {
        if self.outputs.set_output(name, value)? == Delivery::Skipped {
            self.commands.debug(&format!(
                "GITHUB_OUTPUT is not set; output `{name}` not written"
            ))?;
        }
        Ok(())
    }

    pub fn append_summary(&mut self, markdown: &str) -> anyhow::Result<()> {
        if self.outputs.append_summary(markdown)? == Delivery::Skipped {
            self.commands
                .debug("GITHUB_STEP_SUMMARY is not set; job summary not written")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_outputs_leave_a_debug_note() {
        let mut a = Action::new(Commands::new(Vec::new(), Mode::Action), Outputs::default());
        a.set_output("signatures", "[]").unwrap();
        a.append_summary("# x").unwrap();
        assert_eq!(
            String::from_utf8(a.commands.into_inner()).unwrap(),
            "::debug::GITHUB_OUTPUT is not set; output `signatures` not written\n\
             ::debug::GITHUB_STEP_SUMMARY is not set; job summary not written\n"
        );
    }

    #[test]
    fn written_outputs_are_silent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        std::fs::write(&path, "").unwrap();
        let outputs = Outputs {
            output_file: Some(path.clone()),
            summary_file: None,
        };
        let mut a = Action::new(Commands::new(Vec::new(), Mode::Action), outputs);
        a.set_output("n", "v").unwrap();
        assert!(a.commands.into_inner().is_empty());
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("n<<ghadelimiter_"));
        // Errors (a bad name) are still errors.
        let mut a = Action::new(Commands::new(Vec::new(), Mode::Human), Outputs::default());
        assert!(a.set_output("bad name", "v").is_err());
    }
}
