//! The user documentation in `docs/`, generated from the provider's schema in the Terraform
//! registry's layout (as hashicorp/terraform-plugin-docs lays it out): `docs/index.md`,
//! `docs/resources/<name>.md`, `docs/data-sources/<name>.md`, `docs/functions/<name>.md` and
//! `docs/guides/<name>.md`.
//!
//! Attribute text comes only from the schema's descriptions. The rest of each page (the guide
//! steps, examples, import, limits) is a template in `templates/` with the same relative path
//! and `.md.tmpl` appended; a template may use these directives, as tfplugindocs names them:
//! `{{ .SchemaMarkdown }}` (the Schema section), `{{ .FunctionSignatureMarkdown }}`,
//! `{{ .FunctionArgumentsMarkdown }}`, `{{ tffile "examples/..." }}` (a file as a `terraform`
//! code block) and `{{ codefile "shell" "examples/..." }}`. Any other `{{` is left as written.
//! The front matter (`page_title`, `subcategory`, `description`) is written by the generator.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tfplugin::provider::{Function, Provider};
use tfplugin::schema::{Attribute, Block, NestedBlock, Nesting, Schema};
use tfplugin::value::{Type, Value};

/// The directories of `docs/` the generator owns (besides `docs/index.md`).
pub const OWNED_DIRS: &[&str] = &["resources", "data-sources", "functions", "guides"];

/// An error that names the file at fault.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct DocError {
    pub path: PathBuf,
    pub problem: String,
}

fn err(path: &Path, problem: impl Into<String>) -> DocError {
    DocError {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Every page, keyed by its path under `docs/`, rendered from `root` (the repository: its
/// `templates/` and `examples/`).
pub fn render<P: Provider>(
    provider: &P,
    root: &Path,
) -> Result<BTreeMap<PathBuf, String>, DocError> {
    let name = provider.type_name();
    let mut pages = BTreeMap::new();
    let mut add = |rel: PathBuf, page: Page<'_>| -> Result<(), DocError> {
        let text = page.render(root, &root.join("templates").join(tmpl_name(&rel)))?;
        pages.insert(rel, text);
        Ok(())
    };
    let schema = provider.schema();
    add(
        PathBuf::from("index.md"),
        Page {
            title: format!("Provider: {}", title_case(name)),
            description: &schema.block.description,
            schema: Some(&schema),
            function: None,
        },
    )?;
    let resources = provider
        .resources()
        .iter()
        .map(|r| ("resources", "Resource", r.type_name(), r.schema()))
        .collect::<Vec<_>>();
    let data_sources = provider
        .data_sources()
        .iter()
        .map(|d| ("data-sources", "Data Source", d.type_name(), d.schema()))
        .collect::<Vec<_>>();
    for (dir, kind, type_name, s) in resources.iter().chain(&data_sources) {
        add(
            PathBuf::from(dir).join(format!("{}.md", short(name, type_name))),
            Page {
                title: format!("{type_name} {kind} - {name}"),
                description: &s.block.description,
                schema: Some(s),
                function: None,
            },
        )?;
    }
    for f in provider.functions() {
        let sig = f.signature();
        add(
            PathBuf::from("functions").join(format!("{}.md", f.name())),
            Page {
                title: format!("{} function - {name}", f.name()),
                description: sig.summary,
                schema: None,
                function: Some(f.as_ref()),
            },
        )?;
    }
    let guides = root.join("templates").join("guides");
    for file in sorted_dir(&guides)? {
        let Some(stem) = file
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".md.tmpl"))
        else {
            return Err(err(&file, "a guide template must be named <name>.md.tmpl"));
        };
        let text = std::fs::read_to_string(&file).map_err(|e| err(&file, e.to_string()))?;
        let body = expand(&text, &file, root, &Directives::default())?;
        pages.insert(PathBuf::from("guides").join(format!("{stem}.md")), body);
    }
    let expected: Vec<PathBuf> = pages.keys().map(|p| tmpl_name(p)).collect();
    for dir in OWNED_DIRS.iter().filter(|d| **d != "guides") {
        for file in sorted_dir(&root.join("templates").join(dir))? {
            let rel = file
                .strip_prefix(root.join("templates"))
                .unwrap_or(&file)
                .to_path_buf();
            if !expected.contains(&rel) {
                return Err(err(&file, "no resource, data source or function of the provider has this name; rename or remove the template"));
            }
        }
    }
    Ok(pages)
}

/// Writes the pages under `docs`, removing pages of the owned directories that are no longer
/// generated.
pub fn write(pages: &BTreeMap<PathBuf, String>, docs: &Path) -> std::io::Result<()> {
    for stale in stale(pages, docs)? {
        std::fs::remove_file(docs.join(stale))?;
    }
    for (rel, text) in pages {
        let path = docs.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, text)?;
    }
    Ok(())
}

/// The pages under `docs` that differ from the generated ones, are missing, or are not
/// generated at all, sorted.
pub fn differences(
    pages: &BTreeMap<PathBuf, String>,
    docs: &Path,
) -> std::io::Result<Vec<PathBuf>> {
    let mut out = stale(pages, docs)?;
    for (rel, text) in pages {
        match std::fs::read_to_string(docs.join(rel)) {
            Ok(committed) if &committed == text => {}
            Ok(_) => out.push(rel.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => out.push(rel.clone()),
            Err(e) => return Err(e),
        }
    }
    out.sort();
    Ok(out)
}

fn stale(pages: &BTreeMap<PathBuf, String>, docs: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for dir in OWNED_DIRS {
        let files =
            sorted_dir(&docs.join(dir)).map_err(|e| std::io::Error::other(e.to_string()))?;
        for file in files {
            let rel = file.strip_prefix(docs).unwrap_or(&file).to_path_buf();
            if !pages.contains_key(&rel) {
                out.push(rel);
            }
        }
    }
    Ok(out)
}

/// The files of a directory, sorted; none when it does not exist.
fn sorted_dir(dir: &Path) -> Result<Vec<PathBuf>, DocError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(dir, e.to_string())),
    };
    let mut files = Vec::new();
    for e in entries {
        let path = e.map_err(|e| err(dir, e.to_string()))?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn tmpl_name(rel: &Path) -> PathBuf {
    let mut s = rel.as_os_str().to_owned();
    s.push(".tmpl");
    PathBuf::from(s)
}

fn short<'a>(provider: &str, type_name: &'a str) -> &'a str {
    type_name
        .strip_prefix(provider)
        .and_then(|r| r.strip_prefix('_'))
        .unwrap_or(type_name)
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

struct Page<'a> {
    title: String,
    description: &'a str,
    schema: Option<&'a Schema>,
    function: Option<&'a dyn Function>,
}

impl Page<'_> {
    fn render(&self, root: &Path, template: &Path) -> Result<String, DocError> {
        let text = std::fs::read_to_string(template).map_err(|e| {
            err(template, format!("{e}: every page has a template (the page's prose, with `{{{{ .SchemaMarkdown }}}}` where the Schema section goes)"))
        })?;
        let directives = Directives {
            schema: self.schema.map(schema_markdown),
            signature: self.function.map(signature_markdown),
            arguments: self.function.map(arguments_markdown),
        };
        let body = expand(&text, template, root, &directives)?;
        let mut out = String::from("---\n# generated by scripts/docs from the schema and templates/: edit those, not this file\n");
        let _ = writeln!(out, "page_title: {:?}", self.title);
        out.push_str("subcategory: \"\"\ndescription: |-\n");
        for line in self.description.trim().lines() {
            let _ = writeln!(out, "  {line}");
        }
        out.push_str("---\n\n");
        out.push_str(body.trim_start());
        Ok(out)
    }
}

#[derive(Default)]
struct Directives {
    schema: Option<String>,
    signature: Option<String>,
    arguments: Option<String>,
}

/// Replaces the known directives of a template; any other `{{` stays as written.
fn expand(text: &str, template: &Path, root: &Path, d: &Directives) -> Result<String, DocError> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{ ") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let Some(end) = after.find(" }}") else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let words = split_words(inner);
        let needed = |v: &Option<String>| {
            v.clone().ok_or_else(|| {
                err(
                    template,
                    format!("`{{{{ {inner} }}}}` has no meaning on this page"),
                )
            })
        };
        let replacement = match words.as_slice() {
            [".SchemaMarkdown"] => needed(&d.schema)?,
            [".FunctionSignatureMarkdown"] => needed(&d.signature)?,
            [".FunctionArgumentsMarkdown"] => needed(&d.arguments)?,
            ["tffile", file] => code_block("terraform", root, file, template)?,
            ["codefile", lang, file] => code_block(lang, root, file, template)?,
            _ if inner.starts_with('.')
                || inner.starts_with("tffile")
                || inner.starts_with("codefile") =>
            {
                return Err(err(
                    template,
                    format!("unknown directive `{{{{ {inner} }}}}`"),
                ))
            }
            _ => format!("{{{{ {inner} }}}}"),
        };
        out.push_str(replacement.trim_end_matches('\n'));
        rest = &after[end + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Words of a directive; quoted words lose their quotes.
fn split_words(s: &str) -> Vec<&str> {
    s.split_whitespace().map(|w| w.trim_matches('"')).collect()
}

fn code_block(lang: &str, root: &Path, file: &str, template: &Path) -> Result<String, DocError> {
    let text = std::fs::read_to_string(root.join(file))
        .map_err(|e| err(template, format!("{file}: {e}")))?;
    Ok(format!("```{lang}\n{}\n```", text.trim_end()))
}

/// The Schema section as tfplugindocs writes it: Required, Optional and Read-Only lists
/// (sorted by name), then one section per nested block.
pub fn schema_markdown(schema: &Schema) -> String {
    let mut out = String::from("## Schema\n");
    let mut nested = Vec::new();
    block_lists(&schema.block, "", &mut out, &mut nested);
    while !nested.is_empty() {
        let (path, block): (String, &Block) = nested.remove(0);
        let _ = write!(
            out,
            "\n<a id=\"nestedblock--{}\"></a>\n### Nested Schema for `{}`\n",
            path.replace('.', "--"),
            path
        );
        let mut more = Vec::new();
        block_lists(block, &format!("{path}."), &mut out, &mut more);
        nested.extend(more);
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    Required,
    Optional,
    ReadOnly,
}

fn block_lists<'a>(
    block: &'a Block,
    prefix: &str,
    out: &mut String,
    nested: &mut Vec<(String, &'a Block)>,
) {
    let top = prefix.is_empty();
    let mut entries: Vec<(&str, Group, String)> = Vec::new();
    for a in &block.attributes {
        let group = if a.required {
            Group::Required
        } else if a.optional {
            Group::Optional
        } else {
            Group::ReadOnly
        };
        entries.push((&a.name, group, attribute_entry(a)));
    }
    for b in &block.blocks {
        let path = format!("{prefix}{}", b.name);
        let group = if b.min_items > 0 {
            Group::Required
        } else {
            Group::Optional
        };
        entries.push((&b.name, group, block_entry(b, &path)));
        nested.push((path, &b.block));
    }
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (heading, wanted) in [
        ("Required", Group::Required),
        ("Optional", Group::Optional),
        ("Read-Only", Group::ReadOnly),
    ] {
        let lines: Vec<&str> = entries
            .iter()
            .filter(|(_, g, _)| *g == wanted)
            .map(|(_, _, l)| l.as_str())
            .collect();
        if lines.is_empty() {
            continue;
        }
        if top {
            let _ = writeln!(out, "\n### {heading}\n");
        } else {
            let _ = writeln!(out, "\n{heading}:\n");
        }
        for l in lines {
            let _ = writeln!(out, "{l}");
        }
    }
}

fn attribute_entry(a: &Attribute) -> String {
    let mut kind = type_name(&a.ty);
    if a.sensitive {
        kind.push_str(", Sensitive");
    }
    if a.write_only {
        kind.push_str(", Write-only");
    }
    if a.deprecated.is_some() {
        kind.push_str(", Deprecated");
    }
    let mut text = a.description.trim().to_string();
    if let Some(default) = a.default.as_ref().and_then(default_text) {
        if !text.to_lowercase().contains("default") {
            text = format!("{text} Default: {default}.").trim().to_string();
        }
    }
    if a.requires_replace && !text.contains("replaces the resource") {
        text = format!("{text} Changing it replaces the resource.")
            .trim()
            .to_string();
    }
    if let Some(why) = &a.deprecated {
        text = format!("{text} Deprecated: {why}").trim().to_string();
    }
    entry(&a.name, &kind, &text)
}

/// A schema default as the docs write it: `cloud`, `false`, `10`.
fn default_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(format!("`{s}`")),
        Value::Bool(b) => Some(format!("`{b}`")),
        Value::Number(n) => Some(format!("`{n}`")),
        _ => None,
    }
}

fn block_entry(b: &NestedBlock, path: &str) -> String {
    let mut kind = match b.nesting {
        Nesting::Single => "Block".to_string(),
        Nesting::List => "Block List".to_string(),
        Nesting::Set => "Block Set".to_string(),
    };
    if b.min_items > 0 {
        let _ = write!(kind, ", Min: {}", b.min_items);
    }
    if b.max_items > 0 {
        let _ = write!(kind, ", Max: {}", b.max_items);
    }
    let link = format!(
        "(see [below for nested schema](#nestedblock--{}))",
        path.replace('.', "--")
    );
    let text = format!("{} {link}", b.block.description.trim());
    entry(&b.name, &kind, text.trim())
}

fn entry(name: &str, kind: &str, text: &str) -> String {
    // One list item: continuation lines of a multi-line description are indented under it.
    let text = text.replace('\n', "\n  ");
    format!("- `{name}` ({kind}) {text}").trim_end().to_string()
}

/// A type as tfplugindocs names it in attribute lists.
fn type_name(t: &Type) -> String {
    match t {
        Type::Bool => "Boolean".into(),
        Type::Number => "Number".into(),
        Type::String => "String".into(),
        Type::Dynamic => "Dynamic".into(),
        Type::List(e) => format!("List of {}", type_name(e)),
        Type::Set(e) => format!("Set of {}", type_name(e)),
        Type::Map(e) => format!("Map of {}", type_name(e)),
        Type::Object(_) => "Object".into(),
        Type::Tuple(_) => "Tuple".into(),
    }
}

/// A type as Terraform's function signatures write it (`string`, `list of string`).
fn hcl_type(t: &Type) -> String {
    type_name(t).to_lowercase().replace("boolean", "bool")
}

fn signature_markdown(f: &dyn Function) -> String {
    let sig = f.signature();
    let params: Vec<String> = sig
        .parameters
        .iter()
        .map(|p| format!("{} {}", p.name, hcl_type(&p.ty)))
        .collect();
    format!(
        "## Signature\n\n```text\n{}({}) {}\n```\n",
        f.name(),
        params.join(", "),
        hcl_type(&sig.returns)
    )
}

fn arguments_markdown(f: &dyn Function) -> String {
    let mut out = String::from("## Arguments\n\n");
    for (i, p) in f.signature().parameters.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}. `{}` ({}) {}",
            i + 1,
            p.name,
            type_name(&p.ty),
            p.description.trim()
        );
    }
    out
}

#[cfg(test)]
mod tests;
