//! Hand-written XMP in the forms other writers use, and the escaping rules. That Pillow/ElementTree
//! read our packets the same way is checked in save_settings_tests.rs (committed fixtures).

use super::*;

const NS_DECL: &str = "xmlns:v=\"https://github.com/varsr-studio/varsr-studio/xmp/1.0/\"";

#[test]
fn packet_escapes_markup_and_carriage_returns() {
    let json = "{\r\n \"a\": \"<b> & 'c' \\\"d\\\" ]]>\"\r\n}";
    let p = packet(json, "Tool & Co");
    assert!(p.contains(
        "<varsr:settings>{&#13;\n \
         &quot;a&quot;: &quot;&lt;b&gt; &amp; &apos;c&apos; \\&quot;d\\&quot; ]]&gt;&quot;&#13;\n}\
         </varsr:settings>"
    ));
    assert!(p.contains("xmp:CreatorTool=\"Tool &amp; Co\""));
    assert!(p.starts_with("<?xpacket begin=\"\u{FEFF}\""));
    assert!(p.ends_with("<?xpacket end=\"w\"?>"));
    assert_eq!(settings(&p).as_deref(), Some(json));
}

#[test]
fn characters_xml_cannot_hold_become_json_escapes() {
    let p = packet("{\"a\":\"x\u{1}\u{FFFF}\ty\"}", "t");
    assert!(p.contains("{&quot;a&quot;:&quot;x\\u0001\\uFFFF\ty&quot;}"));
    assert_eq!(
        settings(&p).as_deref(),
        Some("{\"a\":\"x\\u0001\\uFFFF\ty\"}")
    );
}

#[test]
fn reads_element_form_with_any_prefix_and_cdata() {
    let xmp = format!(
        "<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF><rdf:Description {NS_DECL}>\
         <v:settingsOld>no</v:settingsOld>\
         <v:settings>{{&quot;a&quot;:<![CDATA[\"<&>\"]]>&#x7D;</v:settings>\
         </rdf:Description></rdf:RDF></x:xmpmeta>"
    );
    assert_eq!(settings(&xmp).as_deref(), Some("{\"a\":\"<&>\"}"));
}

#[test]
fn reads_attribute_form_and_single_quoted_namespace() {
    let xmp = "<rdf:Description xmlns:vs='https://github.com/varsr-studio/varsr-studio/xmp/1.0/' \
               rdf:about='' xvs:settings='no' vs:settings='{\"seed\":&#49;}'/>";
    assert_eq!(settings(xmp).as_deref(), Some("{\"seed\":1}"));
}

#[test]
fn empty_missing_or_malformed() {
    assert_eq!(
        settings(&format!("<d {NS_DECL}><v:settings/></d>")).as_deref(),
        Some("")
    );
    assert_eq!(
        settings(&format!("<d {NS_DECL}><v:settings a='1'></v:settings></d>")).as_deref(),
        Some("")
    );
    // Property of another namespace with the same local name.
    assert_eq!(
        settings("<d xmlns:v='urn:other'><v:settings>x</v:settings></d>"),
        None
    );
    assert_eq!(settings(&format!("<d {NS_DECL}></d>")), None);
    // Unknown entity, unterminated element, structured value.
    assert_eq!(
        settings(&format!("<d {NS_DECL}><v:settings>&nbsp;</v:settings></d>")),
        None
    );
    assert_eq!(settings(&format!("<d {NS_DECL}><v:settings>abc")), None);
    assert_eq!(
        settings(&format!(
            "<d {NS_DECL}><v:settings><rdf:Alt>x</rdf:Alt></v:settings></d>"
        )),
        None
    );
}
