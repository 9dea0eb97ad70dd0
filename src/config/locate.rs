//! Maps a path inside the YAML document (`models.openai/gpt-4o.endpoints[0].provider`) to the
//! line and column where it is written, so every config error points at the operator's text.
//!
//! serde_yaml reports positions only for the first syntax or type error; semantic checks run
//! on typed values that have lost their position. This index is built once per load from
//! yaml-rust2's marked events and answers those lookups.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// One step of a path: a mapping key or a sequence index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

enum Node {
    Scalar(Position),
    Seq(Position, Vec<Node>),
    /// Entries keep the key's own position: an error about a key points at the key.
    Map(Position, Vec<(String, Position, Node)>),
}

impl Node {
    fn position(&self) -> Position {
        match self {
            Node::Scalar(p) | Node::Seq(p, _) | Node::Map(p, _) => *p,
        }
    }
}

/// Positions of every node of a YAML document.
pub struct PositionIndex {
    root: Option<Node>,
}

impl PositionIndex {
    /// Indexes `text`; a document that does not parse yields an empty index (the syntax error
    /// itself is reported by serde_yaml with its own position).
    pub fn new(text: &str) -> PositionIndex {
        let mut builder = TreeBuilder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return PositionIndex { root: None };
        }
        PositionIndex { root: builder.root }
    }

    /// The position of the deepest node of `path` that exists: a missing field points at the
    /// mapping that should hold it.
    pub fn locate(&self, path: &[PathSeg]) -> Option<Position> {
        let mut node = self.root.as_ref()?;
        let mut position = node.position();
        for seg in path {
            // A key points at the key itself; a sequence item (no key) at the item.
            let step = match (node, seg) {
                (Node::Map(_, entries), PathSeg::Key(key)) => entries
                    .iter()
                    .find(|(k, _, _)| k == key)
                    .map(|(_, key_pos, child)| (*key_pos, child)),
                (Node::Seq(_, items), PathSeg::Index(i)) => {
                    items.get(*i).map(|child| (child.position(), child))
                }
                _ => None,
            };
            let Some((pos, child)) = step else { break };
            position = pos;
            node = child;
        }
        Some(position)
    }
}

fn to_position(mark: Marker) -> Position {
    Position {
        line: mark.line(),
        column: mark.col() + 1,
    }
}

/// Builds the node tree from the parser's event stream.
#[derive(Default)]
struct TreeBuilder {
    root: Option<Node>,
    /// Open containers; for a mapping, the pending key waiting for its value.
    stack: Vec<(Node, Option<(String, Position)>)>,
}

impl TreeBuilder {
    fn push_value(&mut self, node: Node, scalar_text: Option<String>) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some((Node::Seq(_, items), _)) => items.push(node),
            Some((Node::Map(_, entries), pending)) => match pending.take() {
                Some((key, key_pos)) => entries.push((key, key_pos, node)),
                None => *pending = Some((scalar_text.unwrap_or_default(), node.position())),
            },
            Some((Node::Scalar(_), _)) => {}
        }
    }

    fn close(&mut self) {
        if let Some((node, _)) = self.stack.pop() {
            self.push_value(node, None);
        }
    }
}

impl MarkedEventReceiver for TreeBuilder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = to_position(mark);
        match ev {
            Event::Scalar(text, ..) => self.push_value(Node::Scalar(pos), Some(text)),
            Event::Alias(_) => self.push_value(Node::Scalar(pos), None),
            Event::SequenceStart(..) => self.stack.push((Node::Seq(pos, Vec::new()), None)),
            Event::MappingStart(..) => self.stack.push((Node::Map(pos, Vec::new()), None)),
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            _ => {}
        }
    }
}

impl PositionIndex {
    /// The first mapping key called `name` at or below `path` (depth first), with its full
    /// path: serde names an unknown field but not where in the entry it sits.
    pub fn find_key_under(&self, path: &[PathSeg], name: &str) -> Option<Vec<PathSeg>> {
        let mut node = self.root.as_ref()?;
        for seg in path {
            node = match (node, seg) {
                (Node::Map(_, entries), PathSeg::Key(key)) => {
                    &entries.iter().find(|(k, _, _)| k == key)?.2
                }
                (Node::Seq(_, items), PathSeg::Index(i)) => items.get(*i)?,
                _ => return None,
            };
        }
        let mut found = path.to_vec();
        search(node, name, &mut found).then_some(found)
    }
}

fn search(node: &Node, name: &str, path: &mut Vec<PathSeg>) -> bool {
    match node {
        Node::Scalar(_) => false,
        Node::Map(_, entries) => {
            if entries.iter().any(|(k, _, _)| k == name) {
                path.push(PathSeg::Key(name.to_string()));
                return true;
            }
            for (k, _, child) in entries {
                path.push(PathSeg::Key(k.clone()));
                if search(child, name, path) {
                    return true;
                }
                path.pop();
            }
            false
        }
        Node::Seq(_, items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(PathSeg::Index(i));
                if search(child, name, path) {
                    return true;
                }
                path.pop();
            }
            false
        }
    }
}

/// Renders a path the way operators read it: `models.openai/gpt-4o.endpoints[0].provider`.
pub fn render_path(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSeg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathSeg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> PathSeg {
        PathSeg::Key(k.to_string())
    }

    const DOC: &str = "server:\n  listen: [\"0.0.0.0:8080\"]\nmodels:\n  a/b:\n    endpoints:\n      - provider: openai\n        model: x\n      - provider: other\n";

    #[test]
    fn locates_nested_keys_and_sequence_items() {
        let index = PositionIndex::new(DOC);
        assert_eq!(
            index.locate(&[key("server"), key("listen")]),
            Some(Position { line: 2, column: 3 })
        );
        let second = [
            key("models"),
            key("a/b"),
            key("endpoints"),
            PathSeg::Index(1),
        ];
        assert_eq!(index.locate(&second).map(|p| p.line), Some(8));
        let provider = [
            key("models"),
            key("a/b"),
            key("endpoints"),
            PathSeg::Index(1),
            key("provider"),
        ];
        assert_eq!(
            index.locate(&provider),
            Some(Position { line: 8, column: 9 })
        );
    }

    #[test]
    fn missing_path_points_at_deepest_existing_node() {
        let index = PositionIndex::new(DOC);
        let p = index.locate(&[key("models"), key("a/b"), key("context_length")]);
        assert_eq!(p.map(|p| p.line), Some(4));
    }

    #[test]
    fn renders_paths() {
        let path = [
            key("models"),
            key("a/b"),
            key("endpoints"),
            PathSeg::Index(0),
        ];
        assert_eq!(render_path(&path), "models.a/b.endpoints[0]");
    }
}
