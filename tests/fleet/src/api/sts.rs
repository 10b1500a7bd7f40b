//! STS GetCallerIdentity, in both the query protocol (XML) and JSON.

use serde_json::{Value, json};

use super::AwsError;
use crate::world::World;

fn identity(world: &World) -> (String, String, String) {
    (
        format!("AIDA{}", &world.access_key_id[4..].to_string()),
        world.account.clone(),
        format!(
            "arn:aws:sts::{}:assumed-role/hoist-fleet/hoist",
            world.account
        ),
    )
}

pub fn caller_identity_json(world: &World) -> Value {
    let (user, account, arn) = identity(world);
    json!({"UserId": user, "Account": account, "Arn": arn})
}

pub fn caller_identity_xml(world: &World) -> String {
    let (user, account, arn) = identity(world);
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
