//! Image references in YAML: Kubernetes manifests (also as Helm renders them), Docker Compose
//! files, GitHub workflows and Docker container action metadata.
//!
//! `saphyr-parser` gives events with positions; this module builds a small tree from them that
//! keeps the position of every scalar, so an annotation can point at the exact line and column
//! of an `image:` value. (`serde_yaml` is unmaintained and drops positions.) Aliases share the
//! anchored node rather than copying it, and walks are bounded, so a "billion laughs" document
//! cannot make the scan explode.

use std::collections::HashMap;
use std::rc::Rc;

use saphyr_parser::{Event, Parser, ScalarStyle};

use super::{ImageRef, RefKind, ScanError, Skipped};

/// Nodes a walk may visit per document before the document is refused (aliases can make a
/// small file describe an exponentially large tree).
const MAX_VISITS: usize = 1_000_000;
/// Nesting depth refused beyond: manifests nest a dozen levels, and the walks recurse.
const MAX_DEPTH: usize = 256;

/// A YAML node with the position of where it starts (1-based line and column).
#[derive(Debug)]
pub(crate) struct Node {
    pub line: usize,
    pub column: usize,
    pub value: Value,
}

#[derive(Debug)]
pub(crate) enum Value {
    Scalar(String),
    Seq(Vec<Rc<Node>>),
    Map(Vec<(Rc<Node>, Rc<Node>)>),
}

impl Node {
    fn scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    fn get(&self, key: &str) -> Option<&Rc<Node>> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| k.scalar() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    fn entries(&self) -> &[(Rc<Node>, Rc<Node>)] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    fn items(&self) -> &[Rc<Node>] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }
}

/// Parse every document of a YAML stream into position-keeping trees.
pub(crate) fn parse_documents(text: &str) -> Result<Vec<Rc<Node>>, (usize, String)> {
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    // Open collections: the node being built, with a pending key for mappings.
    enum Open {
        Seq(usize, usize, usize, Vec<Rc<Node>>),
        Map(
            usize,
            usize,
            usize,
            Vec<(Rc<Node>, Rc<Node>)>,
            Option<Rc<Node>>,
        ),
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut anchors: HashMap<usize, Rc<Node>> = HashMap::new();
    let mut finished: Option<Rc<Node>> = None;

    fn attach(stack: &mut [Open], node: Rc<Node>, finished: &mut Option<Rc<Node>>) {
        match stack.last_mut() {
            Some(Open::Seq(_, _, _, items)) => items.push(node),
            Some(Open::Map(_, _, _, entries, key)) => match key.take() {
                Some(k) => entries.push((k, node)),
                None => *key = Some(node),
            },
            None => *finished = Some(node),
        }
    }

    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| (e.marker().line(), e.info().to_string()))?;
        let line = span.start.line();
        let column = span.start.col() + 1;
        match event {
            Event::StreamEnd => break,
            Event::StreamStart | Event::Nothing => {}
            Event::DocumentStart(_) => {
                anchors.clear();
                finished = None;
            }
            Event::DocumentEnd => {
                if let Some(doc) = finished.take() {
                    docs.push(doc);
                }
            }
            Event::Alias(id) => {
                let node = anchors
                    .get(&id)
                    .cloned()
                    .ok_or((line, format!("alias to an unknown anchor (id {id})")))?;
                attach(&mut stack, node, &mut finished);
            }
            Event::Scalar(value, style, anchor, _) => {
                // Quoted scalars start at the quote; point at the text itself.
                let column = match style {
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => column + 1,
                    _ => column,
                };
                let node = Rc::new(Node {
                    line,
                    column,
                    value: Value::Scalar(value.into_owned()),
                });
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                attach(&mut stack, node, &mut finished);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if stack.len() >= MAX_DEPTH => {
                return Err((line, format!("nested more than {MAX_DEPTH} levels deep")));
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Open::Seq(anchor, line, column, Vec::new()));
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Open::Map(anchor, line, column, Vec::new(), None));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (anchor, node) = match stack.pop() {
                    Some(Open::Seq(anchor, line, column, items)) => (
                        anchor,
                        Node {
                            line,
                            column,
                            value: Value::Seq(items),
                        },
                    ),
                    Some(Open::Map(anchor, line, column, entries, _)) => (
                        anchor,
                        Node {
                            line,
                            column,
                            value: Value::Map(entries),
                        },
                    ),
                    None => return Err((line, "unbalanced collection end".into())),
                };
                let node = Rc::new(node);
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                attach(&mut stack, node, &mut finished);
            }
        }
    }
    Ok(docs)
}

/// What a YAML file is, decided per document from its shape (and the path for workflows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DocKind {
    Kubernetes,
    Compose,
    Workflow,
    ActionMetadata,
    Other,
}

fn doc_kind(path: &str, doc: &Node) -> DocKind {
    let in_workflows = path.contains(".github/workflows/");
    if doc.get("jobs").is_some() && (in_workflows || doc.get("on").is_some()) {
        return DocKind::Workflow;
    }
    if doc.get("runs").and_then(|r| r.get("using")).is_some() {
        return DocKind::ActionMetadata;
    }
    if doc.get("kind").is_some() && doc.get("apiVersion").is_some() {
        return DocKind::Kubernetes;
    }
    if matches!(doc.get("services").map(|s| &s.value), Some(Value::Map(_))) {
        return DocKind::Compose;
    }
    DocKind::Other
}

/// Budgeted recursion over a document.
struct Walk<'a> {
    file: &'a str,
    visits: usize,
    found: Vec<ImageRef>,
    skipped: Vec<Skipped>,
}

impl Walk<'_> {
    fn visit(&mut self, line: usize) -> Result<(), ScanError> {
        self.visits += 1;
        if self.visits > MAX_VISITS {
            return Err(ScanError::TooComplex {
                file: self.file.to_string(),
                line,
            });
        }
        Ok(())
    }

    /// Record the image at `node` (a scalar) as `kind`; expressions and templates that only a
    /// later stage can fill in are skipped with the reason.
    fn image(&mut self, node: &Node, kind: RefKind) {
        let Some(text) = node.scalar() else {
            self.skipped.push(Skipped {
                file: self.file.to_string(),
                line: node.line,
                column: node.column,
                text: String::new(),
                reason: "the image is not a string".into(),
            });
            return;
        };
        let text = text.trim();
        let unresolved = if text.contains("${{") {
            Some("it is a workflow expression, known only when the workflow runs")
        } else if text.contains("{{") {
            Some("it is an unrendered template; scan the rendered output (helm template)")
        } else if text.contains('$') && kind == RefKind::ComposeService {
            Some("it uses Compose variable interpolation, known only at deploy time")
        } else if text.is_empty() {
            Some("the image is empty")
        } else {
            None
        };
        if let Some(reason) = unresolved {
            self.skipped.push(Skipped {
                file: self.file.to_string(),
                line: node.line,
                column: node.column,
                text: text.to_string(),
                reason: reason.into(),
            });
            return;
        }
        self.found.push(ImageRef {
            file: self.file.to_string(),
            line: node.line,
            column: node.column,
            reference: text.to_string(),
            kind,
        });
    }

    /// Every `containers`, `initContainers` and `ephemeralContainers` list anywhere in a
    /// Kubernetes object: Pods, the pod templates of Deployments, StatefulSets, DaemonSets,
    /// ReplicaSets and Jobs, a CronJob's job template, `List` items, and CRDs that embed pod
    /// specs the same way.
    fn kubernetes(&mut self, node: &Node) -> Result<(), ScanError> {
        self.visit(node.line)?;
        match &node.value {
            Value::Map(entries) => {
                for (k, v) in entries {
                    let kind = match k.scalar() {
                        Some("containers") => Some(RefKind::KubernetesContainer),
                        Some("initContainers") => Some(RefKind::KubernetesInitContainer),
                        Some("ephemeralContainers") => Some(RefKind::KubernetesEphemeralContainer),
                        _ => None,
                    };
                    if let (Some(kind), Value::Seq(items)) = (kind, &v.value) {
                        for item in items {
                            if let Some(image) = item.get("image") {
                                self.image(image, kind);
                            }
                        }
                        continue;
                    }
                    self.kubernetes(v)?;
                }
            }
            Value::Seq(items) => {
                for item in items {
                    self.kubernetes(item)?;
                }
            }
            Value::Scalar(_) => {}
        }
        Ok(())
    }

    /// `services.NAME.image`, including through a `<<` merge of an anchored mapping.
    fn compose(&mut self, doc: &Node) -> Result<(), ScanError> {
        let Some(services) = doc.get("services") else {
            return Ok(());
        };
        for (_, service) in services.entries() {
            self.visit(service.line)?;
            if let Some(image) = self.lookup_merged(service, "image")? {
                self.image(&image, RefKind::ComposeService);
            }
        }
        Ok(())
    }

    /// `key` in a mapping, or in the mappings it merges with `<<` (its own keys win).
    fn lookup_merged(&mut self, map: &Node, key: &str) -> Result<Option<Rc<Node>>, ScanError> {
        if let Some(v) = map.get(key) {
            return Ok(Some(v.clone()));
        }
        if let Some(merge) = map.get("<<") {
            self.visit(merge.line)?;
            let sources: Vec<Rc<Node>> = match &merge.value {
                Value::Seq(items) => items.clone(),
                _ => vec![merge.clone()],
            };
            for source in sources {
                if let Some(v) = self.lookup_merged(&source, key)? {
                    return Ok(Some(v));
                }
            }
        }
        Ok(None)
    }

    /// `jobs.ID.container` (a string or a mapping with `image`), `jobs.ID.services.NAME.image`
    /// and `jobs.ID.steps[].uses: docker://…`.
    fn workflow(&mut self, doc: &Node) -> Result<(), ScanError> {
        let Some(jobs) = doc.get("jobs") else {
            return Ok(());
        };
        for (_, job) in jobs.entries() {
            self.visit(job.line)?;
            if let Some(container) = job.get("container") {
                match &container.value {
                    Value::Scalar(_) => self.image(container, RefKind::WorkflowContainer),
                    Value::Map(_) => {
                        if let Some(image) = container.get("image") {
                            self.image(image, RefKind::WorkflowContainer);
                        }
                    }
                    Value::Seq(_) => {}
                }
            }
            if let Some(services) = job.get("services") {
                for (_, service) in services.entries() {
                    self.visit(service.line)?;
                    match &service.value {
                        Value::Scalar(_) => self.image(service, RefKind::WorkflowService),
                        _ => {
                            if let Some(image) = service.get("image") {
                                self.image(image, RefKind::WorkflowService);
                            }
                        }
                    }
                }
            }
            if let Some(steps) = job.get("steps") {
                for step in steps.items() {
                    self.visit(step.line)?;
                    if let Some(uses) = step.get("uses") {
                        self.docker_uses(uses, RefKind::WorkflowStep);
                    }
                }
            }
        }
        Ok(())
    }

    /// `runs.image: docker://…` of a Docker container action (a Dockerfile path is not an
    /// image reference).
    fn action_metadata(&mut self, doc: &Node) {
        if let Some(image) = doc.get("runs").and_then(|r| r.get("image")) {
            self.docker_uses(image, RefKind::ActionImage);
        }
    }

    /// A `docker://IMAGE` value: the reference starts after the scheme.
    fn docker_uses(&mut self, node: &Node, kind: RefKind) {
        let Some(text) = node.scalar() else { return };
        let Some(rest) = text.trim().strip_prefix("docker://") else {
            return;
        };
        let shifted = Node {
            line: node.line,
            column: node.column + "docker://".len(),
            value: Value::Scalar(rest.to_string()),
        };
        self.image(&shifted, kind);
    }
}

/// Find every image reference in a YAML file.
pub(crate) fn scan(file: &str, text: &str) -> Result<(Vec<ImageRef>, Vec<Skipped>), ScanError> {
    let docs = parse_documents(text).map_err(|(line, message)| ScanError::Yaml {
        file: file.to_string(),
        line,
        message,
    })?;
    let mut walk = Walk {
        file,
        visits: 0,
        found: Vec::new(),
        skipped: Vec::new(),
    };
    for doc in &docs {
        walk.visits = 0;
        match doc_kind(file, doc) {
            DocKind::Kubernetes => walk.kubernetes(doc)?,
            DocKind::Compose => walk.compose(doc)?,
            DocKind::Workflow => walk.workflow(doc)?,
            DocKind::ActionMetadata => walk.action_metadata(doc),
            DocKind::Other => {}
        }
    }
    Ok((walk.found, walk.skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(file: &str, text: &str) -> Vec<(usize, usize, String, RefKind)> {
        scan(file, text)
            .unwrap()
            .0
            .into_iter()
            .map(|r| (r.line, r.column, r.reference, r.kind))
            .collect()
    }

    #[test]
    fn multi_document_kubernetes_with_every_container_list() {
        let text = "\
# Source: chart/templates/deploy.yaml
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      initContainers:
        - name: init
          image: busybox:1.36
      containers:
        - name: app
          image: \"ghcr.io/org/app:1.0\"
---
apiVersion: batch/v1
kind: CronJob
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - {name: job, image: 'alpine@sha256:0000000000000000000000000000000000000000000000000000000000000000'}
---
apiVersion: v1
kind: Pod
spec:
  ephemeralContainers:
  - name: debug
    image: debug:1
  containers: []
---
apiVersion: v1
kind: ConfigMap
data:
  image: not-an-image-ref
";
        let got = refs("k8s.yaml", text);
        assert_eq!(
            got,
            vec![
                (9, 18, "busybox:1.36".into(), RefKind::KubernetesInitContainer),
                (12, 19, "ghcr.io/org/app:1.0".into(), RefKind::KubernetesContainer),
                (
                    22,
                    35,
                    "alpine@sha256:0000000000000000000000000000000000000000000000000000000000000000"
                        .into(),
                    RefKind::KubernetesContainer
                ),
                (29, 12, "debug:1".into(), RefKind::KubernetesEphemeralContainer),
            ]
        );
    }

    #[test]
    fn compose_with_merge_keys_and_interpolation() {
        let text = "\
x-base: &base
  image: redis:7
services:
  cache:
    <<: *base
  web:
    image: nginx:1.25
    build: .
  built:
    build: ./app
  env:
    image: ${REGISTRY}/app:1
";
        let (found, skipped) = scan("compose.yaml", text).unwrap();
        let found: Vec<_> = found
            .iter()
            .map(|r| (r.line, r.column, r.reference.as_str()))
            .collect();
        assert_eq!(found, vec![(2, 10, "redis:7"), (7, 12, "nginx:1.25")]);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].line, 12);
        assert!(skipped[0].reason.contains("interpolation"));
    }

    #[test]
    fn workflow_containers_services_and_docker_steps() {
        let text = "\
on: pull_request
jobs:
  a:
    runs-on: ubuntu-latest
    container: node:20
    services:
      db:
        image: postgres:16
      cache: redis:7
    steps:
      - uses: actions/checkout@v4
      - uses: docker://alpine:3.19
      - uses: docker://${{ matrix.image }}
  b:
    container:
      image: ghcr.io/org/builder:2
";
        let (found, skipped) = scan(".github/workflows/ci.yml", text).unwrap();
        let found: Vec<_> = found
            .iter()
            .map(|r| (r.line, r.column, r.reference.as_str(), r.kind))
            .collect();
        assert_eq!(
            found,
            vec![
                (5, 16, "node:20", RefKind::WorkflowContainer),
                (8, 16, "postgres:16", RefKind::WorkflowService),
                (9, 14, "redis:7", RefKind::WorkflowService),
                (12, 24, "alpine:3.19", RefKind::WorkflowStep),
                (16, 14, "ghcr.io/org/builder:2", RefKind::WorkflowContainer),
            ]
        );
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].reason.contains("expression"));
    }

    #[test]
    fn action_metadata_image() {
        let text = "name: x\nruns:\n  using: docker\n  image: docker://ghcr.io/org/a:v1\n";
        assert_eq!(
            refs("action.yml", text),
            vec![(4, 19, "ghcr.io/org/a:v1".into(), RefKind::ActionImage)]
        );
        let text = "name: x\nruns:\n  using: docker\n  image: Dockerfile\n";
        assert!(refs("action.yml", text).is_empty());
    }

    #[test]
    fn alias_bombs_are_refused_not_expanded() {
        let mut text = String::from("apiVersion: v1\nkind: List\na0: &a0 [x]\n");
        for i in 1..40 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        match scan("bomb.yaml", &text) {
            Err(ScanError::TooComplex { .. }) => {}
            other => panic!("expected TooComplex, got {other:?}"),
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!(
            "apiVersion: v1\nkind: List\nitems: {}{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(matches!(
            scan("deep.yaml", &text),
            Err(ScanError::Yaml { .. })
        ));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = scan("bad.yaml", "a: b\nc: [d\n").unwrap_err();
        match err {
            ScanError::Yaml { file, line, .. } => {
                assert_eq!(file, "bad.yaml");
                assert!(line >= 2, "{line}");
            }
            other => panic!("{other:?}"),
        }
    }
}
