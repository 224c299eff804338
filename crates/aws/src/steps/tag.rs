//! `tag`: EC2 `CreateTags` on the action's instance. Setting the same tags again is
//! harmless, so running twice is too.

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::Tag;
use lifehook_core::config::TagStep;
use lifehook_core::step::{Failure, Success};

use super::{Cx, done};

pub(crate) async fn run(ec2: &Client, cx: &Cx<'_>, t: &TagStep) -> Result<Success, Failure> {
    let instance = cx.instance_id().to_owned();
    let mut tags = Vec::new();
    let mut shown = Vec::new();
    for (k, v) in &t.tags {
        let value = cx.render_tag_value(k, v)?;
        shown.push(format!("{k}={value}"));
        tags.push(Tag::builder().key(k).value(value).build());
    }
    ec2.create_tags()
        .resources(&instance)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| cx.api(&format!("CreateTags on {instance}"), &e))?;
    Ok(done(format!("tagged {instance}: {}", shown.join(", "))))
}
