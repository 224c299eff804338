//! Writing Query-protocol XML responses (spec §4.3): `<OpResponse>` with `<OpResult>` as its
//! first child, then `<ResponseMetadata>`; lists as `<member>` items; absent fields omitted.

use std::fmt::Write as _;

/// Escapes text for an XML element or attribute.
pub(crate) fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

/// A small builder for response documents.
#[derive(Debug)]
pub(crate) struct XmlWriter {
    buf: String,
    stack: Vec<String>,
}

impl XmlWriter {
    /// Starts `<{op}Response xmlns=...>` and, when `with_result`, `<{op}Result>`.
    pub(crate) fn response(op: &str, namespace: &str, with_result: bool) -> Self {
        let mut w = XmlWriter {
            buf: String::with_capacity(512),
            stack: Vec::new(),
        };
        let _ = write!(w.buf, "<{op}Response xmlns=\"{namespace}\">");
        w.stack.push(format!("{op}Response"));
        if with_result {
            w.start(&format!("{op}Result"));
        }
        w
    }

    /// A bare document whose root is `root` (EC2 responses, S3 bodies).
    pub(crate) fn root(root: &str, namespace: Option<&str>) -> Self {
        let mut w = XmlWriter {
            buf: String::with_capacity(512),
            stack: Vec::new(),
        };
        match namespace {
            Some(ns) => {
                let _ = write!(w.buf, "<{root} xmlns=\"{ns}\">");
            }
            None => {
                let _ = write!(w.buf, "<{root}>");
            }
        }
        w.stack.push(root.to_owned());
        w
    }

    pub(crate) fn start(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.buf, "<{name}>");
        self.stack.push(name.to_owned());
        self
    }

    pub(crate) fn end(&mut self) -> &mut Self {
        if let Some(name) = self.stack.pop() {
            let _ = write!(self.buf, "</{name}>");
        }
        self
    }

    /// `<name>text</name>`.
    pub(crate) fn elem(&mut self, name: &str, text: impl std::fmt::Display) -> &mut Self {
        let text = text.to_string();
        let _ = write!(self.buf, "<{name}>{}</{name}>", escape(&text));
        self
    }

    /// `<name>text</name>` when `text` is `Some`; nothing otherwise.
    pub(crate) fn opt<T: std::fmt::Display>(&mut self, name: &str, text: Option<T>) -> &mut Self {
        if let Some(t) = text {
            self.elem(name, t);
        }
        self
    }

    /// `<name/>`: an empty element (an empty list or an empty result).
    pub(crate) fn empty(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.buf, "<{name}/>");
        self
    }

    /// `<name><member>..</member>..</name>` for a list of strings, `<name/>` when empty.
    pub(crate) fn string_list<I, S>(&mut self, name: &str, items: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut any = false;
        for it in items {
            if !any {
                self.start(name);
                any = true;
            }
            self.elem("member", it.as_ref());
        }
        if any {
            self.end();
        } else {
            self.empty(name);
        }
        self
    }

    /// Closes the result, writes `<ResponseMetadata>` and closes the document.
    pub(crate) fn finish(mut self, request_id: &str) -> String {
        while self.stack.len() > 1 {
            self.end();
        }
        let _ = write!(
            self.buf,
            "<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        );
        self.end();
        self.buf
    }

    /// Closes every open element (documents without `ResponseMetadata`).
    pub(crate) fn finish_bare(mut self) -> String {
        while !self.stack.is_empty() {
            self.end();
        }
        self.buf
    }

    /// An empty-result response: `<OpResponse><OpResult/><ResponseMetadata/></OpResponse>`.
    pub(crate) fn empty_result(op: &str, namespace: &str, request_id: &str) -> String {
        let mut w = XmlWriter::response(op, namespace, false);
        w.empty(&format!("{op}Result"));
        w.finish(request_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_precedes_metadata_and_text_is_escaped() {
        let mut w = XmlWriter::response("DescribeX", "ns", true);
        w.start("Items").elem("member", "a<b&c").end();
        w.string_list("Empty", Vec::<String>::new());
        let s = w.finish("rid");
        assert_eq!(
            s,
            "<DescribeXResponse xmlns=\"ns\"><DescribeXResult><Items><member>a&lt;b&amp;c</member></Items><Empty/></DescribeXResult><ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></DescribeXResponse>"
        );
    }

    #[test]
    fn empty_result() {
        assert_eq!(
            XmlWriter::empty_result("PutLifecycleHook", "ns", "r"),
            "<PutLifecycleHookResponse xmlns=\"ns\"><PutLifecycleHookResult/><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PutLifecycleHookResponse>"
        );
    }
}
