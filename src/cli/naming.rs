//! Output file names from a template such as `{stem}_varsr_x{scale}.{ext}`.

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 5] = ["stem", "ext", "scale", "cfg", "seed"];

/// The default template.
pub const DEFAULT_TEMPLATE: &str = "{stem}_varsr_x{scale}.{ext}";

/// Values of the placeholders for one output.
#[derive(Clone, Debug, PartialEq)]
pub struct NameFields<'a> {
    pub stem: &'a str,
    pub ext: &'a str,
    pub scale: String,
    pub cfg: f32,
    pub seed: u64,
}

/// 6.0 → "6", 6.5 → "6.5", 0.75 → "0.75", 2.3333 → "2.33".
pub fn short_number(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Checks that every `{…}` is a known placeholder and the braces are balanced.
pub fn validate(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(format!(
                "the name template `{template}` has a `}}` without a `{{`"
            ));
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!(
                "the name template `{template}` has a `{{` without a `}}`"
            ));
        };
        let key = &after[..close];
        if !PLACEHOLDERS.contains(&key) {
            return Err(format!(
                "unknown placeholder `{{{key}}}` in the name template; use {}",
                PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(" ")
            ));
        }
        rest = &after[close + 1..];
    }
    let probe = render_unchecked(
        template,
        &NameFields {
            stem: "x",
            ext: "png",
            scale: "4".into(),
            cfg: 6.0,
            seed: 1,
        },
    );
    if probe.trim().trim_matches('.').is_empty() {
        return Err(format!("the name template `{template}` gives empty names"));
    }
    Ok(())
}

fn render_unchecked(template: &str, f: &NameFields) -> String {
    template
        .replace("{stem}", f.stem)
        .replace("{ext}", f.ext)
        .replace("{scale}", &f.scale)
        .replace("{cfg}", &short_number(f.cfg as f64))
        .replace("{seed}", &f.seed.to_string())
}

/// The file name for `fields` (validate the template first). Characters that cannot be in a file
/// name (path separators and the like) become `_`, so a name never leaves its folder.
pub fn render(template: &str, fields: &NameFields) -> String {
    let name: String = render_unchecked(template, fields)
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    let name = name.trim().to_string();
    if name.trim_matches('.').is_empty() {
        format!("{}_varsr.{}", fields.stem, fields.ext)
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(stem: &str) -> NameFields<'_> {
        NameFields {
            stem,
            ext: "png",
            scale: "4".into(),
            cfg: 6.0,
            seed: 42,
        }
    }

    #[test]
    fn default_and_custom_templates() {
        assert_eq!(
            render(DEFAULT_TEMPLATE, &fields("photo")),
            "photo_varsr_x4.png"
        );
        let t = "{stem}-cfg{cfg}-s{seed}.{ext}";
        assert!(validate(t).is_ok());
        let mut f = fields("Fjällräven ü");
        f.cfg = 6.5;
        assert_eq!(render(t, &f), "Fjällräven ü-cfg6.5-s42.png");
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(
            validate("{stem}_{size}.png")
                .unwrap_err()
                .contains("{size}")
        );
        assert!(validate("{stem.png").is_err());
        assert!(validate("stem}.png").is_err());
        assert!(validate("..").is_err());
        assert!(validate(DEFAULT_TEMPLATE).is_ok());
    }

    #[test]
    fn names_cannot_escape_their_folder() {
        assert_eq!(render("../{stem}.{ext}", &fields("a")), ".._a.png");
        assert_eq!(render("{stem}/x.{ext}", &fields("a")), "a_x.png");
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short_number(6.0), "6");
        assert_eq!(short_number(0.75), "0.75");
        assert_eq!(short_number(2.5), "2.5");
        assert_eq!(short_number(7.0 / 3.0), "2.33");
    }
}
