//! The two GitHub REST calls a PR check needs, through `octocrab`: the files a pull request
//! changes (`GET /repos/{owner}/{repo}/pulls/{n}/files`, followed page by page through the
//! `Link` header), and a Check Run carrying every annotation (`POST …/check-runs`, then one
//! `PATCH …/check-runs/{id}` per batch of at most 50 annotations, the most the API takes per
//! request, then a final `PATCH` with the conclusion).
//!
//! The token goes only to the configured API origin: a pagination link elsewhere is refused,
//! and a plain-HTTP API URL is accepted for loopback hosts only (tests, local proxies).

use std::time::Duration;

use http::Uri;
use octocrab::models::repos::{DiffEntry, DiffEntryStatus};
use octocrab::params::checks::{
    CheckRunConclusion, CheckRunOutput, CheckRunOutputAnnotation, CheckRunOutputAnnotationLevel,
    CheckRunStatus,
};
use octocrab::{Octocrab, Page};

/// Annotations per request: the Checks API's documented maximum.
pub const ANNOTATIONS_PER_REQUEST: usize = 50;
/// Pages of changed files followed at most (GitHub lists at most 3000 files, 30 pages of 100).
const MAX_PAGES: usize = 40;
/// The API caps an annotation message at 64 KiB and a summary or text at 65535 characters.
const MAX_MESSAGE_CHARS: usize = 4000;
const MAX_SUMMARY_CHARS: usize = 65_000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GitHubError {
    #[error("invalid GitHub API URL {url:?}: {message}")]
    InvalidUrl { url: String, message: String },
    #[error("invalid repository {0:?}: expected OWNER/NAME")]
    InvalidRepository(String),
    #[error("GitHub refused the request (HTTP 403: {message}); the token lacks the permission (on a pull request from a fork the token is read-only)")]
    Forbidden { message: String },
    #[error("GitHub answered HTTP {status}: {message}")]
    Api { status: u16, message: String },
    #[error("cannot reach the GitHub API: {0}")]
    Transport(String),
    #[error("the GitHub API's next-page link points to another origin ({0}); refusing to send the token there")]
    ForeignLink(String),
    #[error("the pull request lists more than {MAX_PAGES} pages of changed files; give `files` explicitly")]
    TooManyPages,
}

impl GitHubError {
    /// True when the token may not do this (the fork case): fall back, do not fail.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, GitHubError::Forbidden { .. })
            || matches!(self, GitHubError::Api { status: 404, .. })
    }

    fn of(e: octocrab::Error) -> GitHubError {
        match e {
            octocrab::Error::GitHub { source, .. } => {
                let status = source.status_code.as_u16();
                let message = source.message.clone();
                if status == 403 {
                    GitHubError::Forbidden { message }
                } else {
                    GitHubError::Api { status, message }
                }
            }
            other => GitHubError::Transport(error_chain(&other)),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}

/// A file a pull request changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    pub path: String,
    /// False for removed files (nothing left to scan).
    pub exists: bool,
}

/// How bad an annotation is, as the Checks API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Notice,
    Warning,
    Failure,
}

/// One annotation of a check run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub path: String,
    pub line: u32,
    pub column: u32,
    pub level: Level,
    pub title: String,
    pub message: String,
}

/// The final state of a check run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conclusion {
    Success,
    Failure,
    Neutral,
}

/// Everything a check run shows.
#[derive(Debug, Clone)]
pub struct CheckRunReport {
    pub name: String,
    pub head_sha: String,
    pub conclusion: Conclusion,
    pub title: String,
    /// Markdown; cut to the API's limit.
    pub summary: String,
    pub text: Option<String>,
    pub annotations: Vec<Annotation>,
}

/// What publishing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub id: u64,
    pub html_url: Option<String>,
    /// Requests sent (create, batches, conclusion).
    pub requests: usize,
}

/// A client for one repository.
pub struct GitHubClient {
    octo: Octocrab,
    base: Uri,
    owner: String,
    repo: String,
}

impl std::fmt::Debug for GitHubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubClient")
            .field("base", &self.base)
            .field("owner", &self.owner)
            .field("repo", &self.repo)
            .finish_non_exhaustive()
    }
}

impl GitHubClient {
    /// `api_url` is `GITHUB_API_URL` (`https://api.github.com`, or a GHES `…/api/v3`);
    /// `repository` is `OWNER/NAME`. Call it inside a Tokio runtime (the client spawns its
    /// connection buffer there).
    pub fn new(api_url: &str, token: &str, repository: &str) -> Result<GitHubClient, GitHubError> {
        let invalid = |message: &str| GitHubError::InvalidUrl {
            url: api_url.to_string(),
            message: message.to_string(),
        };
        // The token goes to this URL: the same https-or-loopback rule as every other client.
        crate::net::secure_url(api_url).map_err(|e| match e {
            crate::net::NetError::InsecureUrl { why, .. } => invalid(why),
            other => invalid(&other.to_string()),
        })?;
        let base: Uri = api_url
            .trim_end_matches('/')
            .parse()
            .map_err(|_| invalid("not a URL"))?;
        if base.host().is_none() {
            return Err(invalid("no host"));
        }
        let (owner, repo) = repository
            .split_once('/')
            .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
            .ok_or_else(|| GitHubError::InvalidRepository(repository.to_string()))?;
        let octo = Octocrab::builder()
            .base_uri(base.clone())
            .map_err(|e| invalid(&error_chain(&e)))?
            .personal_token(token.to_string())
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(30)))
            .build()
            .map_err(|e| GitHubError::Transport(error_chain(&e)))?;
        Ok(GitHubClient {
            octo,
            base,
            owner: owner.to_string(),
            repo: repo.to_string(),
        })
    }

    fn route(&self, rest: &str) -> String {
        format!("/repos/{}/{}/{rest}", self.owner, self.repo)
    }

    /// Every file pull request `number` changes, following the pagination links.
    pub async fn pull_request_files(&self, number: u64) -> Result<Vec<ChangedFile>, GitHubError> {
        let mut page: Page<DiffEntry> = self
            .octo
            .get(
                self.route(&format!("pulls/{number}/files")),
                Some(&[("per_page", "100")]),
            )
            .await
            .map_err(GitHubError::of)?;
        let mut files = Vec::new();
        for pages in 1.. {
            files.extend(page.take_items().into_iter().map(|e| ChangedFile {
                exists: e.status != DiffEntryStatus::Removed,
                path: e.filename,
            }));
            let Some(next) = page.next.clone() else { break };
            if next.scheme() != self.base.scheme() || next.authority() != self.base.authority() {
                return Err(GitHubError::ForeignLink(
                    next.authority().map(|a| a.to_string()).unwrap_or_default(),
                ));
            }
            if pages >= MAX_PAGES {
                return Err(GitHubError::TooManyPages);
            }
            page = self
                .octo
                .get_page(&Some(next))
                .await
                .map_err(GitHubError::of)?
                .unwrap_or_default();
        }
        Ok(files)
    }

    /// Create a check run and fill it: annotations in batches, then the conclusion. A failure
    /// after the run was created leaves it in progress; the error says so.
    pub async fn publish_check_run(
        &self,
        report: &CheckRunReport,
    ) -> Result<Published, GitHubError> {
        let checks = self.octo.checks(&self.owner, &self.repo);
        let summary = cut(&report.summary, MAX_SUMMARY_CHARS);
        let output =
            |annotations: Vec<CheckRunOutputAnnotation>, text: Option<String>| CheckRunOutput {
                title: report.title.clone(),
                summary: summary.clone(),
                text,
                annotations,
                images: Vec::new(),
            };
        let created = checks
            .create_check_run(&report.name, &report.head_sha)
            .status(CheckRunStatus::InProgress)
            .output(output(Vec::new(), None))
            .send()
            .await
            .map_err(GitHubError::of)?;
        let id = created.id;
        let mut requests = 1;
        for batch in report.annotations.chunks(ANNOTATIONS_PER_REQUEST) {
            let annotations = batch.iter().map(to_api).collect();
            checks
                .update_check_run(id)
                .output(output(annotations, None))
                .send()
                .await
                .map_err(GitHubError::of)?;
            requests += 1;
        }
        let done = checks
            .update_check_run(id)
            .status(CheckRunStatus::Completed)
            .conclusion(match report.conclusion {
                Conclusion::Success => CheckRunConclusion::Success,
                Conclusion::Failure => CheckRunConclusion::Failure,
                Conclusion::Neutral => CheckRunConclusion::Neutral,
            })
            .output(output(
                Vec::new(),
                report.text.as_deref().map(|t| cut(t, MAX_SUMMARY_CHARS)),
            ))
            .send()
            .await
            .map_err(GitHubError::of)?;
        requests += 1;
        Ok(Published {
            id: id.into_inner(),
            html_url: done.html_url,
            requests,
        })
    }
}

fn to_api(a: &Annotation) -> CheckRunOutputAnnotation {
    CheckRunOutputAnnotation {
        path: a.path.clone(),
        start_line: a.line,
        end_line: a.line,
        // Columns are allowed because start and end are on the same line.
        start_column: Some(a.column),
        end_column: Some(a.column),
        annotation_level: match a.level {
            Level::Notice => CheckRunOutputAnnotationLevel::Notice,
            Level::Warning => CheckRunOutputAnnotationLevel::Warning,
            Level::Failure => CheckRunOutputAnnotationLevel::Failure,
        },
        message: cut(&a.message, MAX_MESSAGE_CHARS),
        title: Some(cut(&a.title, 255)),
        raw_details: None,
    }
}

/// `s` cut to `max` characters, with an ellipsis when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_https_or_loopback_http() {
        assert!(GitHubClient::new("https://api.github.com", "t", "o/r").is_ok());
        assert!(GitHubClient::new("http://127.0.0.1:9/", "t", "o/r").is_ok());
        assert!(matches!(
            GitHubClient::new("http://api.github.com", "t", "o/r"),
            Err(GitHubError::InvalidUrl { .. })
        ));
        assert!(matches!(
            GitHubClient::new("https://api.github.com", "t", "o"),
            Err(GitHubError::InvalidRepository(_))
        ));
    }

    #[test]
    fn cutting_keeps_short_text() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcd", 3), "ab…");
    }
}
