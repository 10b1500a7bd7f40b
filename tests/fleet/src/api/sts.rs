//! STS GetCallerIdentity, in both the query protocol (XML) and JSON. The
//! identity depends on the caller's access key: the client's credentials are
//! the role `hoist-fleet`, the instances' are `hoist-fleet-instance` (what an
//! instance profile's role session looks like).

use serde_json::{Value, json};

use super::AwsError;
use crate::world::World;

fn identity(world: &World, caller: Option<&str>) -> (String, String, String) {
    let instance =
        !world.instance_access_key_id.is_empty() && caller == Some(&world.instance_access_key_id);
    let (role, session, key) = if instance {
        (
            "hoist-fleet-instance",
            "instance",
            &world.instance_access_key_id,
        )
    } else {
        ("hoist-fleet", "hoist", &world.access_key_id)
    };
    let key = key.get(4..).unwrap_or_default();
    (
        format!("AROA{}:{session}", &key[..key.len().min(16)]),
        world.account.clone(),
        format!(
            "arn:aws:sts::{}:assumed-role/{role}/{session}",
            world.account
        ),
    )
}

pub fn caller_identity_json(world: &World, caller: Option<&str>) -> Value {
    let (user, account, arn) = identity(world, caller);
    json!({"UserId": user, "Account": account, "Arn": arn})
}

pub fn caller_identity_xml(world: &World, caller: Option<&str>) -> String {
    let (user, account, arn) = identity(world, caller);
    format!(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n\
         <GetCallerIdentityResult>\n<Arn>{arn}</Arn>\n<UserId>{user}</UserId>\n<Account>{account}</Account>\n</GetCallerIdentityResult>\n\
         <ResponseMetadata>\n<RequestId>{}</RequestId>\n</ResponseMetadata>\n</GetCallerIdentityResponse>\n",
        crate::random::uuid()
    )
}

pub fn error_xml(e: &AwsError) -> String {
    format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n<Error>\n<Type>Sender</Type>\n<Code>{}</Code>\n<Message>{}</Message>\n</Error>\n<RequestId>{}</RequestId>\n</ErrorResponse>\n",
        e.code,
        e.message.replace('&', "&amp;").replace('<', "&lt;"),
        crate::random::uuid()
    )
}
