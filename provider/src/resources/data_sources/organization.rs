//! Data source `expel_organization`: the Workbench organization, read from the API.
use async_trait::async_trait;

use crate::resources::ExpelData;
use tfplugin::diag::{AttrPath, Diagnostics};
use tfplugin::provider::{Ctx, DataSource};
use tfplugin::schema::{Attribute, Block, Schema};
use tfplugin::value::Value;

pub struct OrganizationDataSource;

#[async_trait]
impl DataSource<ExpelData> for OrganizationDataSource {
    fn type_name(&self) -> &'static str {
        "expel_organization"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new("The Workbench organization the provider's API key belongs to (or the one named by `id`).")
                .attr(Attribute::string("id").optional().computed().description("Organization id (GUID). Default: the provider's `organization_id`, else the key's only organization. An id Workbench does not know is an error on `id`."))
                .attr(Attribute::string("name").computed().description("Organization name, e.g. for `provider::expel::soc_email(...)`.")),
        )
    }

    async fn read(
        &self,
        ctx: &Ctx<ExpelData>,
        config: &Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        let wb = &ctx.data.workbench;
        let wanted = config
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| ctx.data.organization_id.clone());
        let org = match wanted {
            Some(id) => match wb.organization(&id).await {
                Ok(o) => o,
                Err(e) if e.status() == Some(404) => {
                    diags.attr_error(AttrPath::root("id"), "Unknown organization", format!("Workbench has no organization {id:?} visible to this API key. Check `id` (or the provider's `organization_id` / EXPEL_ORGANIZATION_ID)."));
                    return None;
                }
                Err(e) => {
                    diags.error("Cannot read the Workbench organization", e.to_string());
                    return None;
                }
            },
            None => match wb.organizations().await {
                Ok(mut orgs) if orgs.len() == 1 => orgs.remove(0),
                Ok(orgs) => {
                    diags.attr_error(AttrPath::root("id"), "Organization is ambiguous", format!("This API key sees {} organizations; set `id` or the provider's `organization_id`.", orgs.len()));
                    return None;
                }
                Err(e) => {
                    diags.error("Cannot list Workbench organizations", e.to_string());
                    return None;
                }
            },
        };
        Some(Value::object([
            ("id", Value::string(org.id)),
            ("name", Value::string(org.name)),
        ]))
    }
}
