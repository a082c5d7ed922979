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
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Value> = None;
    loop {
        let event = reader.read_event().map_err(bad)?;
        match event {
            Event::Start(e) => {
                if root.is_some() {
                    return Err(bad("more than one root element"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(bad(format!("nested deeper than {MAX_DEPTH} elements")));
                }
                let name = std::str::from_utf8(e.name().as_ref())
                    .map_err(|_| bad("an element name is not UTF-8"))?
                    .to_string();
                stack.push(Open {
                    name,
                    children: Map::new(),
                    text: String::new(),
                });
            }
            Event::Empty(e) => {
                let name = std::str::from_utf8(e.name().as_ref())
                    .map_err(|_| bad("an element name is not UTF-8"))?
                    .to_string();
                match stack.last_mut() {
                    Some(parent) => {
                        insert(&mut parent.children, name, Value::String(String::new()))
                    }
                    None if root.is_none() => root = Some(Value::String(String::new())),
                    None => return Err(bad("more than one root element")),
                }
            }
            Event::End(_) => {
                let open = stack
                    .pop()
                    .ok_or_else(|| bad("an end tag without a start"))?;
                let name = open.name.clone();
                let value = close(open);
                match stack.last_mut() {
                    Some(parent) => insert(&mut parent.children, name, value),
                    None => root = Some(value),
                }
            }
            Event::Text(t) => {
                let text = t.decode().map_err(bad)?;
                match stack.last_mut() {
                    Some(open) => open.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(bad("text outside the root element")),
                }
            }
            Event::CData(t) => {
                let text = t.decode().map_err(bad)?;
                let open = stack
                    .last_mut()
                    .ok_or_else(|| bad("CDATA outside the root element"))?;
                open.text.push_str(&text);
            }
            Event::GeneralRef(r) => {
                let open = stack
                    .last_mut()
                    .ok_or_else(|| bad("a reference outside the root element"))?;
                if let Some(c) = r.resolve_char_ref().map_err(bad)? {
                    open.text.push(c);
                } else {
                    let name = r.decode().map_err(bad)?;
                    let text = resolve_predefined_entity(&name)
                        .ok_or_else(|| bad(format!("unknown entity &{name};")))?;
                    open.text.push_str(text);
                }
            }
            Event::DocType(_) => return Err(bad("a DOCTYPE is not accepted")),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(bad("the document ends inside an element"));
    }
    root.ok_or_else(|| bad("no root element"))
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
