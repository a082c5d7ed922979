//! Reads a push's XML body into the same tree a JSON body gives: an element
//! holding only text becomes a string, one with child elements an object, and
//! a name repeated among siblings (WeChat's `<List>`) an array. So both formats
//! go through one reading of the events.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Deepest nesting read; WeChat's events nest three levels.
const MAX_DEPTH: usize = 16;

struct Open {
    name: String,
    children: Map<String, Value>,
    text: String,
}

/// Longest detail kept from the XML reader's message, which quotes the body.
const MAX_DETAIL_CHARS: usize = 160;

fn bad(what: impl std::fmt::Display) -> Error {
    let what = what.to_string();
    let detail: String = what.chars().take(MAX_DETAIL_CHARS).collect();
    let more = if detail.len() < what.len() { "…" } else { "" };
    Error::invalid(format!("body is not valid XML: {detail}{more}"))
}

/// Adds a child, turning a repeated name into an array.
fn insert(map: &mut Map<String, Value>, name: String, value: Value) {
    match map.get_mut(&name) {
        None => {
            map.insert(name, value);
        }
        Some(Value::Array(items)) => items.push(value),
        Some(first) => {
            let first = first.take();
            map.insert(name, Value::Array(vec![first, value]));
        }
    }
}

fn close(open: Open) -> Value {
    if open.children.is_empty() {
        Value::String(open.text.trim().to_string())
    } else {
        Value::Object(open.children)
    }
}

/// The root element's content as a tree. A DOCTYPE is refused (WeChat sends
/// none, and entity declarations are a classic XML attack).
pub fn to_tree(body: &str) -> Result<Value> {
    let mut reader = Reader::from_str(body);
    let mut tree = Tree::default();
    loop {
        match reader.read_event().map_err(bad)? {
            Event::Start(e) => tree.start(element_name(e.name().as_ref())?)?,
            Event::Empty(e) => tree.empty(element_name(e.name().as_ref())?)?,
            Event::End(_) => tree.end()?,
            Event::Text(t) => tree.text(&t.decode().map_err(bad)?)?,
            Event::CData(t) => tree.open("CDATA")?.push_str(&t.decode().map_err(bad)?),
            Event::GeneralRef(r) => {
                let text = tree.open("a reference")?;
                if let Some(c) = r.resolve_char_ref().map_err(bad)? {
                    text.push(c);
                } else {
                    let name = r.decode().map_err(bad)?;
                    let entity = resolve_predefined_entity(&name)
                        .ok_or_else(|| bad(format!("unknown entity &{name};")))?;
                    text.push_str(entity);
                }
            }
            Event::DocType(_) => return Err(bad("a DOCTYPE is not accepted")),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    tree.finish()
}

fn element_name(raw: &[u8]) -> Result<String> {
    std::str::from_utf8(raw)
        .map(str::to_string)
        .map_err(|_| bad("an element name is not UTF-8"))
}

/// The tree as it is read: the elements still open, innermost last, and the
/// root once it closed.
#[derive(Default)]
struct Tree {
    stack: Vec<Open>,
    root: Option<Value>,
}

impl Tree {
    fn start(&mut self, name: String) -> Result<()> {
        if self.root.is_some() {
            return Err(bad("more than one root element"));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(bad(format!("nested deeper than {MAX_DEPTH} elements")));
        }
        self.stack.push(Open {
            name,
            children: Map::new(),
            text: String::new(),
        });
        Ok(())
    }

    /// `<E/>`: an element holding the empty string.
    fn empty(&mut self, name: String) -> Result<()> {
        match self.stack.last_mut() {
            Some(parent) => insert(&mut parent.children, name, Value::String(String::new())),
            None if self.root.is_none() => self.root = Some(Value::String(String::new())),
            None => return Err(bad("more than one root element")),
        }
        Ok(())
    }

    fn end(&mut self) -> Result<()> {
        let open = self
            .stack
            .pop()
            .ok_or_else(|| bad("an end tag without a start"))?;
        let name = open.name.clone();
        let value = close(open);
        match self.stack.last_mut() {
            Some(parent) => insert(&mut parent.children, name, value),
            None => self.root = Some(value),
        }
        Ok(())
    }

    /// Text; outside the root element only white space is allowed.
    fn text(&mut self, text: &str) -> Result<()> {
        match self.stack.last_mut() {
            Some(open) => open.text.push_str(text),
            None if text.trim().is_empty() => {}
            None => return Err(bad("text outside the root element")),
        }
        Ok(())
    }

    /// The text of the innermost open element, for `what` (CDATA, a
    /// reference), which may appear only inside one.
    fn open(&mut self, what: &str) -> Result<&mut String> {
        self.stack
            .last_mut()
            .map(|open| &mut open.text)
            .ok_or_else(|| bad(format!("{what} outside the root element")))
    }

    fn finish(self) -> Result<Value> {
        if !self.stack.is_empty() {
            return Err(bad("the document ends inside an element"));
        }
        self.root.ok_or_else(|| bad("no root element"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn elements_become_a_tree() {
        let v = to_tree(
            "<?xml version=\"1.0\"?><xml><A><![CDATA[a&b]]></A><N>12</N>\n<E/><B><List><T>1</T></List><List><T>2</T></List></B><C>x &amp; y &#65;</C></xml>",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"A": "a&b", "N": "12", "E": "", "B": {"List": [{"T": "1"}, {"T": "2"}]}, "C": "x & y A"})
        );
    }

    #[test]
    fn refuses_broken_or_dangerous_xml() {
        let msg = |s: &str| to_tree(s).unwrap_err().to_string();
        assert!(msg("<xml><A></B></xml>").contains("not valid XML"));
        assert!(msg("<xml><A>").contains("ends inside"));
        assert!(msg("").contains("no root"));
        assert!(msg("<a/><b/>").contains("more than one root"));
        assert!(msg("<!DOCTYPE x [<!ENTITY e \"z\">]><xml>&e;</xml>").contains("DOCTYPE"));
        assert!(msg("<xml>&e;</xml>").contains("unknown entity"));
        assert!(msg("junk<xml/>").contains("outside the root"));
        assert!(msg(&format!("{}{}", "<a>".repeat(40), "</a>".repeat(40))).contains("deeper"));
    }
}
