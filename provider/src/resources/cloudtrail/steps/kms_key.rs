//! The KMS key, its policy and alias (guide steps 1 and 4).
use async_trait::async_trait;

use super::{Cause, Cx, Piece};
use crate::clients::aws::err;
use crate::engine::{Observed, Problem, Step, StepError};
use crate::policy::{self, PolicyKind};
use crate::resources::support::ownership::{Claim, OWNER_KEY};
use crate::resources::support::tags::Tags;

pub struct KmsKey;
pub(super) const KEY: &str = "Step 1/4: KMS key, key policy and alias";
const ALIAS_MISSING: &str = "does not exist";
/// What the drift messages of `enable_key_rotation` call key rotation.
const ROTATION: &str = "automatic key rotation";
const ALIAS_ELSEWHERE: &str = "points at another key";

impl KmsKey {
    pub(super) async fn find(
        &self,
        cx: &Cx,
    ) -> Result<Option<(String, String, String)>, StepError> {
        let id = cx
            .j()
            .key_id
            .clone()
            .unwrap_or_else(|| cx.s.kms_alias.clone());
        let meta = cx
            .aws_opt(KEY, || async {
                cx.aws
                    .kms
                    .describe_key()
                    .key_id(&id)
                    .send()
                    .await
                    .map_err(err("kms", "DescribeKey"))
            })
            .await?;
        Ok(meta.and_then(|m| m.key_metadata).map(|m| {
            let state = m
                .key_state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            (
                m.key_id().to_string(),
                m.arn().unwrap_or_default().to_string(),
                state,
            )
        }))
    }
    pub(super) async fn tags_of(&self, cx: &Cx, key_id: &str) -> Result<Tags, StepError> {
        let tags = cx
            .aws(KEY, || async {
                cx.aws
                    .kms
                    .list_resource_tags()
                    .key_id(key_id)
                    .send()
                    .await
                    .map_err(err("kms", "ListResourceTags"))
            })
            .await?;
        Ok(tags
            .tags()
            .iter()
            .map(|t| (t.tag_key().to_string(), t.tag_value().to_string()))
            .collect())
    }
    pub(super) async fn owned(&self, cx: &Cx, key_id: &str) -> Result<Claim, StepError> {
        let tags = self.tags_of(cx, key_id).await?;
        Ok(cx.claim(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
    }
    /// Beside an existing trail there is no key of ours: the trail's own key (if any) is
    /// recorded as the key, and never changed here (our statement in its policy is
    /// `KeyAccess`'s).
    fn existing(&self, cx: &Cx) -> bool {
        let Some(e) = &cx.s.existing else {
            return false;
        };
        let mut j = cx.j();
        j.key_arn = e.kms_key_arn.clone();
        j.key_id = None;
        true
    }
    /// The key policy as CreateKey sends it (a new key has no one else's statements), once
    /// it passes the linter.
    fn policy(&self, cx: &Cx) -> Result<String, StepError> {
        policy::checked(&policy::key_policy(&cx.loc, &cx.names()), PolicyKind::Key)
            .map_err(|e| StepError::caused_by(KEY, e))
    }
}

#[async_trait]
impl Step<Cx> for KmsKey {
    fn id(&self) -> Piece {
        Piece::KmsKey
    }
    fn title(&self) -> &'static str {
        KEY
    }
    fn needs(&self) -> &'static [Piece] {
        &[]
    }
    async fn create(&self, cx: &Cx) -> Result<(), StepError> {
        if self.existing(cx) {
            return Ok(());
        }
        if let Some((id, arn, _)) = self.find(cx).await? {
            let claim = self.owned(cx, &id).await?;
            cx.adopt(KEY, &format!("KMS key {}", cx.s.kms_alias), claim)?;
            {
                let mut j = cx.j();
                j.key_id = Some(id.clone());
                j.key_arn = Some(arn);
            }
            let problems = self.inspect(cx, &id).await?;
            return if problems.is_empty() {
                Ok(())
            } else {
                self.repair(cx, &problems).await
            };
        }
        let tags = super::tagging::kms_tags(cx);
        let doc = self.policy(cx)?;
        let created = cx
            .aws(KEY, || async {
                cx.aws
                    .kms
                    .create_key()
                    .description("Expel CloudTrail: encrypts the trail's logs, its bucket and the notification queue")
                    .policy(&doc)
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await
                    .map_err(err("kms", "CreateKey"))
            })
            .await?;
        let meta = created
            .key_metadata
            .ok_or_else(|| StepError::new(KEY, "CreateKey returned no key"))?;
        let id = meta.key_id().to_string();
        {
            let mut j = cx.j();
            j.key_id = Some(id.clone());
            j.key_arn = meta.arn().map(str::to_string);
        }
        cx.aws(KEY, || async {
            cx.aws
                .kms
                .create_alias()
                .alias_name(&cx.s.kms_alias)
                .target_key_id(&id)
                .send()
                .await
                .map_err(err("kms", "CreateAlias"))
        })
        .await?;
        if cx.s.enable_key_rotation {
            self.set_rotation(cx, &id, true).await?;
        }
        Ok(())
    }
    async fn observe(&self, cx: &Cx) -> Result<Observed<Cause>, StepError> {
        if self.existing(cx) {
            return Ok(Observed::Present(Vec::new()));
        }
        match self.find(cx).await? {
            None => Ok(Observed::Gone),
            Some((id, arn, _)) => {
                {
                    let mut j = cx.j();
                    j.key_id = Some(id.clone());
                    j.key_arn = Some(arn);
                }
                Ok(Observed::Present(self.inspect(cx, &id).await?))
            }
        }
    }
    async fn repair(&self, cx: &Cx, problems: &[Problem<Cause>]) -> Result<(), StepError> {
        if self.existing(cx) {
            return Ok(());
        }
        let id = cx
            .j()
            .key_id
            .clone()
            .ok_or_else(|| StepError::new(KEY, "no key recorded"))?;
        let any = |c: Cause| problems.iter().any(|p| p.cause == c);
        if any(Cause::KeyPendingDeletion) {
            cx.aws(KEY, || async {
                cx.aws
                    .kms
                    .cancel_key_deletion()
                    .key_id(&id)
                    .send()
                    .await
                    .map_err(err("kms", "CancelKeyDeletion"))
            })
            .await?;
        }
        if any(Cause::KeyDisabled) || any(Cause::KeyPendingDeletion) {
            cx.aws(KEY, || async {
                cx.aws
                    .kms
                    .enable_key()
                    .key_id(&id)
                    .send()
                    .await
                    .map_err(err("kms", "EnableKey"))
            })
            .await?;
        }
        let live = cx.aws(KEY, || cx.get_key_policy(&id)).await?;
        let doc = policy::merged_for_write(
            &policy::key_policy(&cx.loc, &cx.names()),
            live.as_deref(),
            PolicyKind::Key,
        )
        .map_err(|e| StepError::caused_by(KEY, e))?;
        cx.aws(KEY, || cx.put_key_policy(&id, &doc)).await?;
        self.point_alias(cx, &id, problems).await?;
        // A key that was disabled or scheduled for deletion could not be asked about its
        // rotation: enabling it again is idempotent.
        let revived = any(Cause::KeyDisabled) || any(Cause::KeyPendingDeletion);
        if any(Cause::KeyRotation) || (revived && cx.s.enable_key_rotation) {
            self.set_rotation(cx, &id, cx.s.enable_key_rotation).await?;
        }
        Ok(())
    }
    async fn delete(&self, cx: &Cx) -> Result<(), StepError> {
        if self.existing(cx) {
            return Ok(());
        }
        let Some((id, _, state)) = self.find(cx).await? else {
            return Ok(());
        };
        let claim = self.owned(cx, &id).await?;
        // Logs are evidence: the key stays unless force_destroy, and is no longer this
        // instance's, so that a later integration with the same alias adopts it.
        if !cx.s.force_destroy {
            if claim == Claim::Ours {
                cx.aws(KEY, || async {
                    cx.aws
                        .kms
                        .untag_resource()
                        .key_id(&id)
                        .tag_keys(OWNER_KEY)
                        .send()
                        .await
                        .map_err(err("kms", "UntagResource"))
                })
                .await?;
            }
            return Ok(());
        }
        if !cx.deletable(&format!("KMS key {}", cx.s.kms_alias), claim) {
            return Ok(());
        }
        cx.aws_opt(KEY, || async {
            cx.aws
                .kms
                .delete_alias()
                .alias_name(&cx.s.kms_alias)
                .send()
                .await
                .map_err(err("kms", "DeleteAlias"))
        })
        .await?;
        if state != "PendingDeletion" {
            cx.aws(KEY, || async {
                cx.aws
                    .kms
                    .schedule_key_deletion()
                    .key_id(&id)
                    .pending_window_in_days(cx.s.key_deletion_window_days)
                    .send()
                    .await
                    .map_err(err("kms", "ScheduleKeyDeletion"))
            })
            .await?;
        }
        Ok(())
    }
}

impl KmsKey {
    async fn inspect(&self, cx: &Cx, id: &str) -> Result<Vec<Problem<Cause>>, StepError> {
        let mut problems = Vec::new();
        let meta = cx
            .aws(KEY, || async {
                cx.aws
                    .kms
                    .describe_key()
                    .key_id(id)
                    .send()
                    .await
                    .map_err(err("kms", "DescribeKey"))
            })
            .await?;
        let state = meta
            .key_metadata()
            .and_then(|m| m.key_state())
            .map(|s| s.as_str());
        match state {
            Some("PendingDeletion") => problems.push(Problem::new(
                "KMS key is scheduled for deletion",
                Cause::KeyPendingDeletion,
            )),
            Some("Disabled") => {
                problems.push(Problem::new("KMS key is disabled", Cause::KeyDisabled))
            }
            _ => {}
        }
        // Rotation is compared while it is wanted, or while it is on because of us and no
        // longer wanted; KMS answers only for a usable key.
        let rotation_ours = cx.j().rotation_ours;
        if state == Some("Enabled") && (cx.s.enable_key_rotation || rotation_ours) {
            let on = self.rotation(cx, id).await?;
            if cx.s.enable_key_rotation && !on {
                problems.push(Problem::new(
                    format!("KMS key's {ROTATION} is off (enable_key_rotation = true)"),
                    Cause::KeyRotation,
                ));
            } else if !cx.s.enable_key_rotation && on {
                problems.push(Problem::new(format!("KMS key's {ROTATION} is on, as this resource set it, but enable_key_rotation = false"), Cause::KeyRotation));
            }
        }
        let pol = cx.aws(KEY, || cx.get_key_policy(id)).await?;
        let expected = policy::key_policy(&cx.loc, &cx.names());
        let live = pol.as_deref().unwrap_or_default();
        problems.extend(
            policy::drift("key policy", &expected, live)
                .into_iter()
                .map(Problem::from),
        );
        cx.warn_defeats(
            "Another party's statement defeats ours in the key policy",
            policy::foreign_defeats("key policy", &expected, live, PolicyKind::Key),
        );
        match self.alias_target(cx, &cx.s.kms_alias).await? {
            None => problems.push(Problem::new(
                format!("alias {} {ALIAS_MISSING}", cx.s.kms_alias),
                Cause::AliasMissing,
            )),
            Some(k) if k != id => problems.push(Problem::new(
                format!("alias {} {ALIAS_ELSEWHERE} ({k})", cx.s.kms_alias),
                Cause::AliasElsewhere,
            )),
            Some(_) => {}
        }
        Ok(problems)
    }
    /// Whether KMS rotates the key automatically.
    async fn rotation(&self, cx: &Cx, id: &str) -> Result<bool, StepError> {
        let status = cx
            .aws(KEY, || async {
                cx.aws
                    .kms
                    .get_key_rotation_status()
                    .key_id(id)
                    .send()
                    .await
                    .map_err(err("kms", "GetKeyRotationStatus"))
            })
            .await?;
        Ok(status.key_rotation_enabled())
    }
    /// Turns automatic rotation on (KMS's default period, a year) or off, and records that
    /// it is this resource's doing.
    async fn set_rotation(&self, cx: &Cx, id: &str, on: bool) -> Result<(), StepError> {
        if on {
            cx.aws(KEY, || async {
                cx.aws
                    .kms
                    .enable_key_rotation()
                    .key_id(id)
                    .send()
                    .await
                    .map_err(err("kms", "EnableKeyRotation"))
            })
            .await?;
        } else {
            cx.aws(KEY, || async {
                cx.aws
                    .kms
                    .disable_key_rotation()
                    .key_id(id)
                    .send()
                    .await
                    .map_err(err("kms", "DisableKeyRotation"))
            })
            .await?;
        }
        cx.j().rotation_ours = on;
        Ok(())
    }
    /// The id of the key an alias points at, if the alias exists.
    async fn alias_target(&self, cx: &Cx, alias: &str) -> Result<Option<String>, StepError> {
        let meta = cx
            .aws_opt(KEY, || async {
                cx.aws
                    .kms
                    .describe_key()
                    .key_id(alias)
                    .send()
                    .await
                    .map_err(err("kms", "DescribeKey"))
            })
            .await?;
        Ok(meta
            .and_then(|m| m.key_metadata)
            .map(|m| m.key_id().to_string()))
    }
    /// Points the configured alias at the key: created when missing, moved when it names
    /// another key.
    async fn point_alias(
        &self,
        cx: &Cx,
        id: &str,
        problems: &[Problem<Cause>],
    ) -> Result<(), StepError> {
        let any = |c: Cause| problems.iter().any(|p| p.cause == c);
        if any(Cause::AliasMissing) {
            cx.aws(KEY, || async {
                cx.aws
                    .kms
                    .create_alias()
                    .alias_name(&cx.s.kms_alias)
                    .target_key_id(id)
                    .send()
                    .await
                    .map_err(err("kms", "CreateAlias"))
            })
            .await?;
        } else if any(Cause::AliasElsewhere) {
            cx.aws(KEY, || async {
                cx.aws
                    .kms
                    .update_alias()
                    .alias_name(&cx.s.kms_alias)
                    .target_key_id(id)
                    .send()
                    .await
                    .map_err(err("kms", "UpdateAlias"))
            })
            .await?;
        }
        Ok(())
    }
    /// Removes an alias the configuration no longer names, only while it points at our key.
    pub(super) async fn retire_alias(&self, old: &Cx, id: &str) -> Result<(), StepError> {
        if self.alias_target(old, &old.s.kms_alias).await?.as_deref() != Some(id) {
            return Ok(());
        }
        old.aws_opt(KEY, || async {
            old.aws
                .kms
                .delete_alias()
                .alias_name(&old.s.kms_alias)
                .send()
                .await
                .map_err(err("kms", "DeleteAlias"))
        })
        .await?;
        Ok(())
    }
}
