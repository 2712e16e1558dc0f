//! A minimal XMP packet carrying the generation settings (used for WebP, which has no text chunk).
//!
//! The JSON goes, XML-escaped, into a `varsr:settings` property of our own namespace
//! [`NAMESPACE`]; `xmp:CreatorTool` names the software, as other tools expect to find it there.
//! Reading is not a general XML parser: it finds the prefix bound to [`NAMESPACE`] and takes the
//! `settings` property in either form an XMP writer may use (element or attribute), so files
//! re-saved by tools that keep unknown XMP (exiftool, digiKam…) still read back.

/// XML namespace of the `settings` property.
pub const NAMESPACE: &str = "https://github.com/varsr-studio/varsr-studio/xmp/1.0/";

/// The XMP packet (UTF-8) holding `json`.
///
/// Characters XML 1.0 cannot carry at all (C0 controls other than tab/LF/CR, U+FFFE, U+FFFF) are
/// written as JSON `\uXXXX` escapes: valid JSON only has them inside strings, where the escape
/// means the same character, so the JSON read back is equivalent (byte-identical for all JSON
/// that does not contain them raw, which includes everything serde_json writes).
pub fn packet(json: &str, creator_tool: &str) -> String {
    format!(
        "<?xpacket begin=\"\u{FEFF}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
         <x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n\
         <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n\
         <rdf:Description rdf:about=\"\" xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\" \
         xmlns:varsr=\"{NAMESPACE}\" xmp:CreatorTool=\"{}\">\n\
         <varsr:settings>{}</varsr:settings>\n\
         </rdf:Description>\n\
         </rdf:RDF>\n\
         </x:xmpmeta>\n\
         <?xpacket end=\"w\"?>",
        escape(creator_tool),
        escape(json)
    )
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            // `>` only matters after `]]`, but escaping it always is simpler and still valid.
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // A literal CR would be normalised to LF by every XML parser.
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if u32::from(c) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                out.push_str(&format!("\\u{:04X}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// The `settings` property of [`NAMESPACE`] in `xmp`, unescaped; `None` if absent or malformed.
pub fn settings(xmp: &str) -> Option<String> {
    let prefix = prefix_of(xmp, NAMESPACE)?;
    let open = format!("<{prefix}:settings");
    let attr = format!("{prefix}:settings=");
    let mut from = 0;
    while let Some(i) = xmp[from..].find(&open).map(|i| from + i) {
        let rest = &xmp[i + open.len()..];
        // `<varsr:settingsX` is another name; only whitespace, `>` or `/>` end ours.
        match rest.chars().next()? {
            '>' => return element_text(&rest[1..], &prefix),
            '/' => return rest.starts_with("/>").then(String::new),
            c if c.is_ascii_whitespace() => {
                let end = rest.find('>')?;
                if rest[..end].ends_with('/') {
                    return Some(String::new());
                }
                return element_text(&rest[end + 1..], &prefix);
            }
            _ => from = i + open.len(),
        }
    }
    let mut from = 0;
    while let Some(i) = xmp[from..].find(&attr).map(|i| from + i) {
        // Must start a name: preceded by whitespace (not `xvarsr:settings=`).
        if xmp[..i].ends_with(|c: char| c.is_ascii_whitespace()) {
            let rest = &xmp[i + attr.len()..];
            let quote = rest.chars().next().filter(|q| *q == '"' || *q == '\'')?;
            let end = rest[1..].find(quote)?;
            return unescape(&rest[1..1 + end]);
        }
        from = i + attr.len();
    }
    None
}

/// The prefix declared as `xmlns:PREFIX="ns"` (either quote).
fn prefix_of(xmp: &str, ns: &str) -> Option<String> {
    for quote in ['"', '\''] {
        let needle = format!("={quote}{ns}{quote}");
        let mut from = 0;
        while let Some(i) = xmp[from..].find(&needle).map(|i| from + i) {
            let before = xmp[..i].trim_end();
            if let Some(start) = before.rfind("xmlns:") {
                let name = &before[start + "xmlns:".len()..];
                if !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_alphanumeric() || "-_.".contains(c))
                {
                    return Some(name.to_string());
                }
            }
            from = i + needle.len();
        }
    }
    None
}

/// Text content up to `</prefix:settings>`: entities and CDATA sections resolved, no markup.
fn element_text(rest: &str, prefix: &str) -> Option<String> {
    let close = format!("</{prefix}:settings>");
    let mut out = String::new();
    let mut rest = rest;
    loop {
        if let Some(body) = rest.strip_prefix("<![CDATA[") {
            let end = body.find("]]>")?;
            out.push_str(&body[..end]);
            rest = &body[end + 3..];
        } else if rest.starts_with(&close) {
            return Some(out);
        } else {
            let end = rest.find('<')?;
            out.push_str(&unescape(&rest[..end])?);
            rest = &rest[end..];
            if !rest.starts_with(&close) && !rest.starts_with("<![CDATA[") {
                // A nested element (rdf:Alt, …) is not the plain-text form we write.
                return None;
            }
        }
    }
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after.find(';')?;
        let entity = &after[..end];
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()?
                } else {
                    entity.strip_prefix('#')?.parse().ok()?
                };
                char::from_u32(code)?
            }
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
#[path = "xmp_tests.rs"]
mod tests;
