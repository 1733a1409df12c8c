//! The CloudFormation StackSets and Organizations calls of `expel_aws_organization_member_roles`,
//! each retried by the engine's deadline (the SDK's own retries are off) and failing as the
//! step that made it. Facts relied on (AWS CloudFormation API Reference):
//! - a service-managed stack set (`PermissionModel=SERVICE_MANAGED`) deploys to OUs
//!   (`DeploymentTargets.OrganizationalUnitIds`), never to the management account;
//!   `AccountFilterType=DIFFERENCE` with `Accounts` leaves those accounts out
//!   (API_DeploymentTargets);
//! - `CallAs=DELEGATED_ADMIN` from a registered delegated administrator, `SELF` from the
//!   management account (API_CreateStackSet);
//! - operations are asynchronous: `DescribeStackSetOperation` until SUCCEEDED, FAILED or
//!   STOPPED (API_StackSetOperation); with `ManagedExecution.Active` conflicting operations
//!   queue (QUEUED) instead of failing with `OperationInProgressException`;
//! - `ConcurrencyMode=SOFT_FAILURE_TOLERANCE` keeps the concurrency at
//!   `MaxConcurrentPercentage` whatever the failures (API_StackSetOperationPreferences);
//! - `ListStackInstances` pages with `NextToken` (at most 100 a page);
//! - `DeleteStackSet` of a stack set with instances: `StackSetNotEmptyException`;
//! - `DetectStackSetDrift` is an operation like the others (it holds the stack set's one
//!   operation slot); its verdicts are each instance's `DriftStatus` (API_DetectStackSetDrift).
use std::collections::BTreeMap;

use aws_sdk_cloudformation::types::{
    AccountFilterType, AutoDeployment, CallAs, Capability, ConcurrencyMode, DeploymentTargets,
    ManagedExecution, PermissionModels, StackInstanceSummary, StackSet,
    StackSetOperationPreferences, StackSetOperationStatus, Tag,
};

use aws_sdk_cloudformation::operation::update_stack_set::builders::UpdateStackSetFluentBuilder;

use crate::clients::aws::{err, AwsClients, AwsError};
use crate::engine::{Deadline, StepError};

/// What the calls need to know of the settings.
pub struct Target<'a> {
    pub name: &'a str,
    pub call_as: &'a str,
    pub region: &'a str,
    pub max_concurrent_percentage: i32,
    pub failure_tolerance_percentage: i32,
}

/// One stack instance, as ListStackInstances says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    pub account: String,
    pub ou: Option<String>,
    /// CURRENT, OUTDATED or INOPERABLE.
    pub status: String,
    /// The detailed status: SUCCEEDED, FAILED, RUNNING, PENDING, CANCELLED, INOPERABLE, ...
    pub detailed: String,
    pub reason: String,
    /// The last drift detection's verdict: DRIFTED, IN_SYNC, NOT_CHECKED, UNKNOWN.
    pub drift: String,
}

impl Instance {
    /// Whether the role is not (or no longer) deployed as the stack set says.
    pub fn failed(&self) -> bool {
        self.status == "INOPERABLE"
            || matches!(
                self.detailed.as_str(),
                "FAILED" | "INOPERABLE" | "CANCELLED" | "FAILED_IMPORT"
            )
    }
}

/// How an operation ended, when it did not succeed.
pub struct OperationFailed {
    pub status: String,
    pub reason: String,
}

pub struct Api<'a> {
    pub aws: &'a AwsClients,
    pub deadline: &'a Deadline,
    pub step: &'static str,
    pub t: Target<'a>,
}

pub fn call_as(s: &str) -> CallAs {
    match s {
        "DELEGATED_ADMIN" => CallAs::DelegatedAdmin,
        _ => CallAs::SelfValue,
    }
}

impl Api<'_> {
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, StepError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsError>>,
    {
        self.deadline.retry_step(self.step, op).await
    }

    fn preferences(&self) -> StackSetOperationPreferences {
        StackSetOperationPreferences::builder()
            .concurrency_mode(ConcurrencyMode::SoftFailureTolerance)
            .max_concurrent_percentage(self.t.max_concurrent_percentage)
            .failure_tolerance_percentage(self.t.failure_tolerance_percentage)
            .build()
    }

    /// The stack set, or None when there is none of that name (or it was deleted).
    pub async fn describe(&self) -> Result<Option<StackSet>, StepError> {
        let cf = &self.aws.cloudformation;
        let r = self
            .deadline
            .retry(|| async {
                cf.describe_stack_set()
                    .stack_set_name(self.t.name)
                    .call_as(call_as(self.t.call_as))
                    .send()
                    .await
                    .map_err(err("cloudformation", "DescribeStackSet"))
            })
            .await;
        match r {
            Ok(o) => Ok(o
                .stack_set
                .filter(|s| s.status().map(|x| x.as_str()) != Some("DELETED"))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(StepError::caused_by(self.step, e)),
        }
    }

    /// CreateStackSet: true when made, false when a stack set of the name exists already.
    pub async fn create(
        &self,
        template: &str,
        description: &str,
        auto_deployment: (bool, bool),
        tags: &[(String, String)],
    ) -> Result<bool, StepError> {
        let cf = &self.aws.cloudformation;
        let tags: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        // Sent once: a lost answer is found again by name (NameAlreadyExistsException).
        let r = cf
            .create_stack_set()
            .stack_set_name(self.t.name)
            .description(description)
            .template_body(template)
            .capabilities(Capability::CapabilityNamedIam)
            .permission_model(PermissionModels::ServiceManaged)
            .auto_deployment(auto(auto_deployment))
            .managed_execution(ManagedExecution::builder().active(true).build())
            .call_as(call_as(self.t.call_as))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(err("cloudformation", "CreateStackSet"));
        match r {
            Ok(_) => Ok(true),
            Err(e) if e.code == "NameAlreadyExistsException" => Ok(false),
            Err(e) => Err(StepError::caused_by(self.step, e)),
        }
    }

    /// UpdateStackSet of the stack set as `with` changes it; returns the operation.
    async fn update(
        &self,
        with: impl Fn(UpdateStackSetFluentBuilder) -> UpdateStackSetFluentBuilder,
    ) -> Result<String, StepError> {
        let cf = &self.aws.cloudformation;
        let o = self
            .call(|| {
                let b = with(
                    cf.update_stack_set()
                        .stack_set_name(self.t.name)
                        .capabilities(Capability::CapabilityNamedIam)
                        .call_as(call_as(self.t.call_as)),
                );
                async move {
                    b.send()
                        .await
                        .map_err(err("cloudformation", "UpdateStackSet"))
                }
            })
            .await?;
        Ok(o.operation_id.unwrap_or_default())
    }

    /// A new template: rolled out to every instance.
    pub async fn update_template(&self, template: &str) -> Result<String, StepError> {
        self.update(|b| {
            b.template_body(template)
                .operation_preferences(self.preferences())
                .managed_execution(ManagedExecution::builder().active(true).build())
        })
        .await
    }

    /// The automatic deployment alone: AWS refuses it together with deployment targets or
    /// regions (API_UpdateStackSet).
    pub async fn update_auto_deployment(&self, a: (bool, bool)) -> Result<String, StepError> {
        self.update(|b| b.use_previous_template(true).auto_deployment(auto(a)))
            .await
    }

    /// Redeploys the current template to the instances of `ous` (outdated or failed ones).
    pub async fn redeploy(&self, ous: &[String]) -> Result<String, StepError> {
        self.update(|b| {
            b.use_previous_template(true)
                .deployment_targets(targets(ous, None, &[]))
                .regions(self.t.region)
                .operation_preferences(self.preferences())
        })
        .await
    }

    /// CreateStackInstances for every account of `ous` but `exclude`.
    pub async fn create_instances(
        &self,
        ous: &[String],
        exclude: &[String],
    ) -> Result<String, StepError> {
        let cf = &self.aws.cloudformation;
        let filter = (!exclude.is_empty()).then_some(AccountFilterType::Difference);
        let o = self
            .call(|| async {
                cf.create_stack_instances()
                    .stack_set_name(self.t.name)
                    .deployment_targets(targets(ous, filter.clone(), exclude))
                    .regions(self.t.region)
                    .operation_preferences(self.preferences())
                    .call_as(call_as(self.t.call_as))
                    .send()
                    .await
                    .map_err(err("cloudformation", "CreateStackInstances"))
            })
            .await?;
        Ok(o.operation_id.unwrap_or_default())
    }

    /// DeleteStackInstances of `ous` (only `only` accounts of them, when given).
    pub async fn delete_instances(
        &self,
        ous: &[String],
        only: &[String],
        retain: bool,
    ) -> Result<String, StepError> {
        let cf = &self.aws.cloudformation;
        let filter = (!only.is_empty()).then_some(AccountFilterType::Intersection);
        let o = self
            .call(|| async {
                cf.delete_stack_instances()
                    .stack_set_name(self.t.name)
                    .deployment_targets(targets(ous, filter.clone(), only))
                    .regions(self.t.region)
                    .retain_stacks(retain)
                    .operation_preferences(self.preferences())
                    .call_as(call_as(self.t.call_as))
                    .send()
                    .await
                    .map_err(err("cloudformation", "DeleteStackInstances"))
            })
            .await?;
        Ok(o.operation_id.unwrap_or_default())
    }

    /// DetectStackSetDrift: each instance's stack compared with the template; the verdicts
    /// land in the instances' DriftStatus once the operation ends.
    pub async fn detect_drift(&self) -> Result<String, StepError> {
        let cf = &self.aws.cloudformation;
        let o = self
            .call(|| async {
                cf.detect_stack_set_drift()
                    .stack_set_name(self.t.name)
                    .operation_preferences(self.preferences())
                    .call_as(call_as(self.t.call_as))
                    .send()
                    .await
                    .map_err(err("cloudformation", "DetectStackSetDrift"))
            })
            .await?;
        Ok(o.operation_id.unwrap_or_default())
    }

    /// DeleteStackSet; Err names the accounts still holding instances.
    pub async fn delete(&self) -> Result<(), StepError> {
        let cf = &self.aws.cloudformation;
        let r = self
            .deadline
            .retry(|| async {
                cf.delete_stack_set()
                    .stack_set_name(self.t.name)
                    .call_as(call_as(self.t.call_as))
                    .send()
                    .await
                    .map_err(err("cloudformation", "DeleteStackSet"))
            })
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) if e.code == "StackSetNotEmptyException" => {
                let left = self.instances().await?;
                Err(StepError::new(self.step, format!("{e}. Stack instances are left in: {}. Delete them (or let destroy delete them: an instance that cannot be deleted is INOPERABLE; `aws cloudformation delete-stack-instances --retain-stacks` removes it from the stack set and leaves its stack, which you then delete in that account), then run destroy again.", describe_instances(&left))))
            }
            Err(e) => Err(StepError::caused_by(self.step, e)),
        }
    }

    /// Every stack instance of the stack set in the target region, all pages.
    pub async fn instances(&self) -> Result<Vec<Instance>, StepError> {
        let cf = &self.aws.cloudformation;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .call(|| {
                    let token = token.clone();
                    async move {
                        cf.list_stack_instances()
                            .stack_set_name(self.t.name)
                            .stack_instance_region(self.t.region)
                            .max_results(100)
                            .set_next_token(token)
                            .call_as(call_as(self.t.call_as))
                            .send()
                            .await
                            .map_err(err("cloudformation", "ListStackInstances"))
                    }
                })
                .await?;
            out.extend(page.summaries().iter().map(instance));
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// Waits, with backoff, for the operation to end; its failure with the accounts that
    /// failed and why.
    pub async fn wait(&self, operation_id: &str) -> Result<Option<OperationFailed>, StepError> {
        let cf = &self.aws.cloudformation;
        let mut attempt = 0;
        loop {
            let o = self
                .call(|| async {
                    cf.describe_stack_set_operation()
                        .stack_set_name(self.t.name)
                        .operation_id(operation_id)
                        .call_as(call_as(self.t.call_as))
                        .send()
                        .await
                        .map_err(err("cloudformation", "DescribeStackSetOperation"))
                })
                .await?;
            let op = o.stack_set_operation();
            let status = op.and_then(|o| o.status()).cloned();
            let reason = op
                .and_then(|o| o.status_reason())
                .unwrap_or_default()
                .to_string();
            match status {
                Some(StackSetOperationStatus::Succeeded) => return Ok(None),
                Some(s @ (StackSetOperationStatus::Failed | StackSetOperationStatus::Stopped)) => {
                    return Ok(Some(OperationFailed {
                        status: s.as_str().to_string(),
                        reason,
                    }))
                }
                _ => {}
            }
            attempt += 1;
            if !self.deadline.pause(attempt.min(8)).await {
                return Err(StepError::new(self.step, format!("stack set operation {operation_id} of {} had not ended when the timeout ran out (or Terraform was interrupted); it goes on in AWS. Raise `timeouts` and apply again: the next run waits for the stack set's operations to finish (managed execution queues its own).", self.t.name)));
            }
        }
    }
}

fn auto((enabled, retain): (bool, bool)) -> AutoDeployment {
    let b = AutoDeployment::builder().enabled(enabled);
    // AWS accepts RetainStacksOnAccountRemoval only with automatic deployment on.
    if enabled {
        b.retain_stacks_on_account_removal(retain).build()
    } else {
        b.build()
    }
}

fn targets(
    ous: &[String],
    filter: Option<AccountFilterType>,
    accounts: &[String],
) -> DeploymentTargets {
    let b = DeploymentTargets::builder().set_organizational_unit_ids(Some(ous.to_vec()));
    match filter {
        Some(f) => b
            .account_filter_type(f)
            .set_accounts(Some(accounts.to_vec()))
            .build(),
        None => b.build(),
    }
}

fn instance(s: &StackInstanceSummary) -> Instance {
    Instance {
        account: s.account().unwrap_or_default().to_string(),
        ou: s.organizational_unit_id().map(str::to_string),
        status: s
            .status()
            .map(|x| x.as_str().to_string())
            .unwrap_or_default(),
        detailed: s
            .stack_instance_status()
            .and_then(|x| x.detailed_status())
            .map(|x| x.as_str().to_string())
            .unwrap_or_default(),
        reason: s.status_reason().unwrap_or_default().to_string(),
        drift: s
            .drift_status()
            .map(|x| x.as_str().to_string())
            .unwrap_or_default(),
    }
}

/// "111111111111 (OUTDATED: reason), ..." for errors.
pub fn describe_instances(list: &[Instance]) -> String {
    list.iter()
        .map(|i| {
            let why = if i.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", i.reason)
            };
            format!("{} ({}{why})", i.account, i.status)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The organization seen from the caller: roots, OUs and accounts, every page.
pub struct Org<'a> {
    pub aws: &'a AwsClients,
    pub deadline: &'a Deadline,
    pub step: &'static str,
}

impl Org<'_> {
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, StepError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsError>>,
    {
        self.deadline.retry_step(self.step, op).await
    }

    /// The management account's id.
    pub async fn management_account(&self) -> Result<String, StepError> {
        let o = &self.aws.organizations;
        let d = self
            .call(|| async {
                o.describe_organization()
                    .send()
                    .await
                    .map_err(err("organizations", "DescribeOrganization"))
            })
            .await?;
        Ok(d.organization()
            .and_then(|o| o.master_account_id())
            .unwrap_or_default()
            .to_string())
    }

    /// Every account below `ous` (at any depth), with the OU of `ous` it sits under.
    pub async fn accounts_under(
        &self,
        ous: &[String],
    ) -> Result<BTreeMap<String, String>, StepError> {
        let o = &self.aws.organizations;
        let mut out = BTreeMap::new();
        for top in ous {
            let mut frontier = vec![top.clone()];
            while let Some(parent) = frontier.pop() {
                let mut token: Option<String> = None;
                loop {
                    let page = self
                        .call(|| {
                            let token = token.clone();
                            let parent = parent.clone();
                            async move {
                                o.list_accounts_for_parent()
                                    .parent_id(parent)
                                    .set_next_token(token)
                                    .send()
                                    .await
                                    .map_err(err("organizations", "ListAccountsForParent"))
                            }
                        })
                        .await?;
                    for a in page.accounts() {
                        if let Some(id) = a.id() {
                            out.entry(id.to_string()).or_insert_with(|| top.clone());
                        }
                    }
                    token = page.next_token().map(str::to_string);
                    if token.is_none() {
                        break;
                    }
                }
                let mut token: Option<String> = None;
                loop {
                    let page = self
                        .call(|| {
                            let token = token.clone();
                            let parent = parent.clone();
                            async move {
                                o.list_organizational_units_for_parent()
                                    .parent_id(parent)
                                    .set_next_token(token)
                                    .send()
                                    .await
                                    .map_err(err(
                                        "organizations",
                                        "ListOrganizationalUnitsForParent",
                                    ))
                            }
                        })
                        .await?;
                    frontier.extend(
                        page.organizational_units()
                            .iter()
                            .filter_map(|u| u.id().map(str::to_string)),
                    );
                    token = page.next_token().map(str::to_string);
                    if token.is_none() {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }
}
