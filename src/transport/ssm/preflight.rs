//! Preflight: which instances the targets are, and whether each one can run the script
//! (managed by SSM, online, Linux), asked before anything changes.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::InstanceInformationStringFilter;

use super::{SsmError, api_error, retry_throttled};
use crate::config::Targets;

/// An instance SSM knows, as preflight sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedInstance {
    pub id: String,
    pub ping_status: String,
    pub platform: String,
    pub agent_version: Option<String>,
}

/// Resolves the config's targets to instance ids and checks every one is managed, online and
/// Linux. Fails naming each instance that is not, before anything changes.
pub async fn preflight(client: &Client, targets: &Targets) -> Result<Vec<String>, SsmError> {
    let (ids, found) = instances(client, targets).await?;
    let problems = judge_preflight(&ids, &found);
    if problems.is_empty() {
        Ok(ids)
    } else {
        Err(SsmError::Preflight(problems))
    }
}

/// The instance ids the targets name (ids first, in the config's order, then the tagged
/// ones), and what SSM reports of each one it knows. Fails only when there are none.
pub async fn instances(
    client: &Client,
    targets: &Targets,
) -> Result<(Vec<String>, BTreeMap<String, ManagedInstance>), SsmError> {
    let mut found: BTreeMap<String, ManagedInstance> = BTreeMap::new();
    if !targets.instance_ids.is_empty() {
        for chunk in targets.instance_ids.chunks(50) {
            let filter = InstanceInformationStringFilter::builder()
                .key("InstanceIds")
                .set_values(Some(chunk.to_vec()))
                .build()
                .expect("key and values set");
            for i in describe(client, vec![filter]).await? {
                found.insert(i.id.clone(), i);
            }
        }
    }
    let mut tagged = BTreeSet::new();
    if !targets.tags.is_empty() {
        let filters = targets
            .tags
            .iter()
            .map(|(k, vs)| {
                InstanceInformationStringFilter::builder()
                    .key(format!("tag:{k}"))
                    .set_values(Some(vs.clone()))
                    .build()
                    .expect("key and values set")
            })
            .collect();
        for i in describe(client, filters).await? {
            tagged.insert(i.id.clone());
            found.insert(i.id.clone(), i);
        }
    }
    let mut ids: Vec<String> = targets.instance_ids.clone();
    ids.extend(
        tagged
            .into_iter()
            .filter(|id| !targets.instance_ids.contains(id)),
    );
    if ids.is_empty() {
        return Err(SsmError::NoTargets(describe_targets(targets)));
    }
    Ok((ids, found))
}

/// Pure: what is wrong with each wanted instance, given what SSM reported.
pub fn judge_preflight(ids: &[String], found: &BTreeMap<String, ManagedInstance>) -> Vec<String> {
    let mut problems = Vec::new();
    for id in ids {
        match found.get(id) {
            None => problems.push(format!(
                "  {id}: not managed by SSM (no agent registered in this account and region, \
                 or the instance lacks an instance profile allowing SSM)"
            )),
            Some(i) if i.ping_status != "Online" => problems.push(format!(
                "  {id}: SSM agent is {} (not Online): the instance is stopped or its agent \
                 cannot reach SSM",
                i.ping_status
            )),
            Some(i) if i.platform != "Linux" => problems.push(format!(
                "  {id}: platform is {}, hoist's scripts need Linux",
                i.platform
            )),
            Some(_) => {}
        }
    }
    problems
}

fn describe_targets(t: &Targets) -> String {
    let mut parts: Vec<String> = t.instance_ids.clone();
    for (k, vs) in &t.tags {
        parts.push(format!("tag {k} in [{}]", vs.join(", ")));
    }
    parts.join("; ")
}

async fn describe(
    client: &Client,
    filters: Vec<InstanceInformationStringFilter>,
) -> Result<Vec<ManagedInstance>, SsmError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let resp = retry_throttled(|| {
            client
                .describe_instance_information()
                .set_filters(Some(filters.clone()))
                .set_next_token(token.clone())
                .send()
        })
        .await
        .map_err(|e| api_error("DescribeInstanceInformation", &e))?;
        for i in resp.instance_information_list() {
            out.push(ManagedInstance {
                id: i.instance_id().unwrap_or_default().to_owned(),
                ping_status: i
                    .ping_status()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
                platform: i
                    .platform_type()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
                agent_version: i.agent_version().map(str::to_owned),
            });
        }
        token = resp.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preflight_names_each_unusable_instance() {
        let mut found = BTreeMap::new();
        for (id, ping, platform) in [
            ("i-00000000000000001", "Online", "Linux"),
            ("i-00000000000000002", "ConnectionLost", "Linux"),
            ("i-00000000000000003", "Online", "Windows"),
        ] {
            found.insert(
                id.to_owned(),
                ManagedInstance {
                    id: id.into(),
                    ping_status: ping.into(),
                    platform: platform.into(),
                    agent_version: None,
                },
            );
        }
        let ids: Vec<String> = (1..=4).map(|n| format!("i-0000000000000000{n}")).collect();
        let problems = judge_preflight(&ids, &found);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(
            problems[0].contains("i-00000000000000002") && problems[0].contains("ConnectionLost")
        );
        assert!(problems[1].contains("i-00000000000000003") && problems[1].contains("Windows"));
        assert!(problems[2].contains("i-00000000000000004") && problems[2].contains("not managed"));
    }

    /// SSM calls are under the shared throttling policy (`crate::aws::retry`): a
    /// `DescribeInstanceInformation` throttled (past the SDK's own retries, here none) is
    /// made again.
    #[tokio::test]
    async fn a_throttled_describe_is_retried() {
        use aws_sdk_ssm::config::retry::RetryConfig;
        use aws_sdk_ssm::operation::describe_instance_information::{
            DescribeInstanceInformationError, DescribeInstanceInformationOutput,
        };
        use aws_sdk_ssm::types::{InstanceInformation, PingStatus, PlatformType};
        use aws_smithy_mocks::{RuleMode, mock, mock_client};

        let id = "i-0123456789abcdef0";
        let rule = mock!(aws_sdk_ssm::Client::describe_instance_information)
            .sequence()
            .error(|| {
                DescribeInstanceInformationError::generic(
                    aws_sdk_ssm::error::ErrorMetadata::builder()
                        .code("ThrottlingException")
                        .message("Rate exceeded")
                        .build(),
                )
            })
            .output(move || {
                DescribeInstanceInformationOutput::builder()
                    .instance_information_list(
                        InstanceInformation::builder()
                            .instance_id(id)
                            .ping_status(PingStatus::Online)
                            .platform_type(PlatformType::Linux)
                            .build(),
                    )
                    .build()
            })
            .build();
        let client = mock_client!(aws_sdk_ssm, RuleMode::Sequential, [&rule], |c| c
            .retry_config(RetryConfig::disabled()));
        let targets = Targets {
            instance_ids: vec![id.to_owned()],
            tags: BTreeMap::new(),
            max_concurrency: crate::config::Rate::Count(1),
            max_errors: crate::config::Rate::Count(0),
        };
        assert_eq!(preflight(&client, &targets).await.unwrap(), [id]);
        assert_eq!(rule.num_calls(), 2);
    }
}
