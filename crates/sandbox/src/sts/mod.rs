//! STS in the sandbox (AWS Query, `Version=2011-06-15`, SigV4 service `sts`): only
//! `GetCallerIdentity`, which SDK-based tools (boto3 helpers, the AWS CLI's
//! `aws sts get-caller-identity`, LocalStack's test fixtures, lifehook's own identity
//! checks) call first to learn the account.
//!
//! The sandbox has one account, [`ACCOUNT_ID`], and accepts any credentials; every caller
//! is the principal IAM enforcement names in its denials
//! (`arn:aws:sts::000000000000:assumed-role/lifehook-sandbox/<access key id>`, see
//! [`crate::iam`]), so what a caller learns here is what a denial tells it.
//!
//! Like `sts:GetCallerIdentity` on AWS, it is never denied: "No permissions are required to
//! perform this operation. If an administrator attaches a policy to your identity that
//! explicitly denies access to the sts:GetCallerIdentity action, you can still perform
//! this operation" (AWS STS API Reference, GetCallerIdentity).

use crate::ACCOUNT_ID;
use crate::protocol::{AwsError, Input, Reply, RequestCtx, Service, XmlWriter};

#[cfg(test)]
mod tests;

/// The unique id of the sandbox's one role, `AROA` + 17 characters as IAM role ids are.
const ROLE_ID: &str = "AROASANDBOXLIFEHOOK01";

/// Answers an STS request made with the credentials of `access_key_id` (`anonymous` when
/// the request is unsigned).
pub(crate) fn handle(
    ctx: &RequestCtx,
    input: Input,
    access_key_id: &str,
) -> Result<Reply, AwsError> {
    let Input::Query(_) = input else {
        return Err(AwsError::unknown_operation(Service::Sts, &ctx.op));
    };
    match ctx.op.as_str() {
        "GetCallerIdentity" => Ok(Reply::Xml(get_caller_identity(ctx, access_key_id))),
        other => Err(AwsError::unknown_operation(Service::Sts, other)),
    }
}

/// `<GetCallerIdentityResult>` with `UserId`, `Account` and `Arn` of an assumed role: the
/// user id of an assumed-role session is `<role id>:<session name>` (IAM User Guide,
/// "Principal key values": `aws:userid` of a role session).
fn get_caller_identity(ctx: &RequestCtx, access_key_id: &str) -> String {
    let mut w = XmlWriter::response(&ctx.op, Service::Sts.xml_namespace(), true);
    w.elem("UserId", format!("{ROLE_ID}:{access_key_id}"))
        .elem("Account", ACCOUNT_ID)
        .elem("Arn", crate::iam::principal_arn(access_key_id));
    w.finish(&ctx.request_id)
}
