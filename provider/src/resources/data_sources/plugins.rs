//! Data source `expel_plugins`: the Workbench plugin catalogue, which says how a security
//! device of each kind is registered (the JSON schema of its `device_spec`).
use async_trait::async_trait;

use crate::resources::ExpelData;
use tfplugin::diag::{AttrPath, Diagnostics};
use tfplugin::provider::{Ctx, DataSource};
use tfplugin::schema::{Attribute, Block, Schema};
use tfplugin::value::{Type, Value};

pub struct PluginsDataSource;

fn plugin_type() -> Type {
    Type::object([
        ("id", Type::String),
        ("slug", Type::String),
        ("display_name", Type::String),
        ("vendor_name", Type::String),
        ("device_spec_schema", Type::String),
    ])
}

#[async_trait]
impl DataSource<ExpelData> for PluginsDataSource {
    fn type_name(&self) -> &'static str {
        "expel_plugins"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new("The Workbench plugin catalogue: one entry per integration that can be registered as a security device.")
                .attr(Attribute::string("slug").optional().description("Only the plugin with this slug (e.g. `aws`); an unknown slug is an error that lists the known ones."))
                .attr(Attribute::string("vendor_name").optional().description("Only plugins of this vendor (case-insensitive), e.g. `SentinelOne`."))
                .attr(Attribute::new("plugins", Type::list(plugin_type())).computed().description("Matching plugins, sorted by slug, each with `id`, `slug`, `display_name`, `vendor_name` and `device_spec_schema`. `device_spec_schema` is the JSON schema (as a JSON string) of the device's `device_spec`; decode it with `jsondecode`.")),
        )
    }

    async fn read(
        &self,
        ctx: &Ctx<ExpelData>,
        config: &Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let slug = config.get("slug").and_then(Value::as_str);
        let vendor = config.get("vendor_name").and_then(Value::as_str);
        let mut plugins = match ctx.data.workbench.plugins().await {
            Ok(p) => p,
            Err(e) => {
                diags.error("Cannot read the Workbench plugin catalogue", e.to_string());
                return None;
            }
        };
        plugins.sort_by(|a, b| a.slug.cmp(&b.slug));
        let known: Vec<String> = plugins.iter().map(|p| p.slug.clone()).collect();
        plugins.retain(|p| {
            slug.is_none_or(|s| p.slug == s)
                && vendor.is_none_or(|v| p.vendor_name.eq_ignore_ascii_case(v))
        });
        if let (Some(s), true) = (slug, plugins.is_empty()) {
            diags.attr_error(
                AttrPath::root("slug"),
                "Unknown plugin",
                format!(
                    "Workbench has no plugin {s:?}; known slugs: {}.",
                    known.join(", ")
                ),
            );
            return None;
        }
        let list = plugins
            .into_iter()
            .map(|p| {
                Value::object([
                    ("id", Value::string(p.id)),
                    ("slug", Value::string(p.slug)),
                    ("display_name", Value::string(p.display_name)),
                    ("vendor_name", Value::string(p.vendor_name)),
                    (
                        "device_spec_schema",
                        Value::string(p.device_spec_schema.to_string()),
                    ),
                ])
            })
            .collect();
        Some(Value::object([
            ("slug", slug.map(Value::string).unwrap_or(Value::Null)),
            (
                "vendor_name",
                vendor.map(Value::string).unwrap_or(Value::Null),
            ),
            ("plugins", Value::List(list)),
        ]))
    }
}
