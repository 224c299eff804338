//! IMDSv2 of sandbox instances through aws-config's own IMDS client, pointed at
//! `http://127.0.0.1:PORT/_imds/<instance-id>/` (the client keeps the endpoint's path).

use aws_config::imds::Client as ImdsClient;
use aws_config::imds::client::error::ImdsError;
use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, LifecycleHookSpecification};
use lifehook_conformance::{Harness, eventually};

fn imds(h: &Harness, id: &str) -> ImdsClient {
    ImdsClient::builder()
        .endpoint(format!("{}/_imds/{id}/", h.endpoint()))
        .expect("endpoint")
        .build()
}

async fn get(c: &ImdsClient, path: &str) -> Result<String, u16> {
    match c.get(path).await {
        Ok(v) => Ok(v.as_ref().to_owned()),
        Err(ImdsError::ErrorResponse(e)) => Err(e.response().status().as_u16()),
        Err(e) => panic!("IMDS {path}: {e:?}"),
    }
}

#[tokio::test]
async fn token_flow_identity_and_tags_of_a_standalone_instance() {
    let h = Harness::manual().await;
    let made: serde_json::Value = h
        .control_post(
            "ec2/instances",
            serde_json::json!({"tags": {"Name": "agent-1", "lifehook:hook": "drain"}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = made["instance_id"].as_str().unwrap().to_owned();
    let c = imds(&h, &id);
    assert_eq!(
        get(&c, "/latest/meta-data/instance-id").await,
        Ok(id.clone())
    );
    assert_eq!(
        get(&c, "/latest/meta-data/placement/region").await,
        Ok("us-east-1".into())
    );
    let doc = get(&c, "/latest/dynamic/instance-identity/document")
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["instanceId"], id.as_str());
    assert_eq!(doc["region"], "us-east-1");
    let keys = get(&c, "/latest/meta-data/tags/instance").await.unwrap();
    assert_eq!(keys, "Name\nlifehook:hook");
    assert_eq!(
        get(&c, "/latest/meta-data/tags/instance/lifehook:hook").await,
        Ok("drain".into())
    );
    assert_eq!(
        get(&c, "/latest/meta-data/autoscaling/target-lifecycle-state").await,
        Err(404),
        "never in a group"
    );
    assert_eq!(get(&c, "/latest/meta-data/nothing-here").await, Err(404));
    // aws-config's region provider reads placement/region through the same endpoint.
    let region = aws_config::imds::region::ImdsRegionProvider::builder()
        .imds_client(c.clone())
        .build()
        .region()
        .await;
    assert_eq!(region.as_ref().map(|r| r.as_ref()), Some("us-east-1"));
    // Unknown instances answer 404, from the token request on: the SDK cannot even get a
    // token.
    let r = h
        .http()
        .put(format!(
            "{}/_imds/i-0123456789abcdef0/latest/api/token",
            h.endpoint()
        ))
        .header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let nobody = imds(&h, "i-0123456789abcdef0");
    assert!(matches!(
        nobody.get("/latest/meta-data/instance-id").await,
        Err(ImdsError::FailedToLoadToken(_))
    ));
}

#[tokio::test]
async fn expired_tokens_are_renewed_by_the_client() {
    let h = Harness::manual().await;
    let made: serde_json::Value = h
        .control_post("ec2/instances", serde_json::json!({}))
        .await
        .json()
        .await
        .unwrap();
    let id = made["instance_id"].as_str().unwrap().to_owned();
    let c = ImdsClient::builder()
        .endpoint(format!("{}/_imds/{id}/", h.endpoint()))
        .expect("endpoint")
        .token_ttl(std::time::Duration::from_secs(60))
        .build();
    assert_eq!(
        get(&c, "/latest/meta-data/instance-id").await,
        Ok(id.clone())
    );
    // The sandbox token expires on virtual time; the client's cache still holds it, gets a
    // 401, fetches a new token and retries.
    h.advance(3600.0).await;
    assert_eq!(get(&c, "/latest/meta-data/instance-id").await, Ok(id));
}

#[tokio::test]
async fn target_lifecycle_state_follows_the_group() {
    let h = Harness::manual().await;
    h.asg
        .create_auto_scaling_group()
        .auto_scaling_group_name("web")
        .min_size(0)
        .max_size(2)
        .desired_capacity(1)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name("lt-web")
                .build(),
        )
        .availability_zones("us-east-1a")
        .lifecycle_hook_specification_list(
            LifecycleHookSpecification::builder()
                .lifecycle_hook_name("up")
                .lifecycle_transition("autoscaling:EC2_INSTANCE_LAUNCHING")
                .heartbeat_timeout(600)
                .default_result("ABANDON")
                .build(),
        )
        .lifecycle_hook_specification_list(
            LifecycleHookSpecification::builder()
                .lifecycle_hook_name("down")
                .lifecycle_transition("autoscaling:EC2_INSTANCE_TERMINATING")
                .heartbeat_timeout(600)
                .default_result("CONTINUE")
                .build(),
        )
        .send()
        .await
        .expect("CreateAutoScalingGroup");
    let lifecycle = |id: String| {
        let asg = h.asg.clone();
        async move {
            asg.describe_auto_scaling_instances()
                .instance_ids(id)
                .send()
                .await
                .ok()?
                .auto_scaling_instances()
                .first()?
                .lifecycle_state()
                .map(str::to_owned)
        }
    };
    let out = h
        .asg
        .describe_auto_scaling_instances()
        .send()
        .await
        .unwrap();
    let id = out.auto_scaling_instances()[0]
        .instance_id()
        .unwrap()
        .to_owned();
    assert_eq!(lifecycle(id.clone()).await.as_deref(), Some("Pending:Wait"));
    let c = imds(&h, &id);
    const TARGET: &str = "/latest/meta-data/autoscaling/target-lifecycle-state";
    // As in the AWS tutorial: already InService while the launch hook waits.
    assert_eq!(get(&c, TARGET).await, Ok("InService".into()));
    assert_eq!(
        get(
            &c,
            "/latest/meta-data/tags/instance/aws:autoscaling:groupName"
        )
        .await,
        Ok("web".into())
    );

    // The instance completes its own launch hook by instance id.
    h.asg
        .complete_lifecycle_action()
        .auto_scaling_group_name("web")
        .lifecycle_hook_name("up")
        .instance_id(&id)
        .lifecycle_action_result("CONTINUE")
        .send()
        .await
        .expect("CompleteLifecycleAction");
    assert_eq!(lifecycle(id.clone()).await.as_deref(), Some("InService"));
    assert_eq!(get(&c, TARGET).await, Ok("InService".into()));

    // Scale in: Terminating:Wait, and the instance sees Terminated.
    h.asg
        .set_desired_capacity()
        .auto_scaling_group_name("web")
        .desired_capacity(0)
        .send()
        .await
        .expect("SetDesiredCapacity");
    assert_eq!(
        lifecycle(id.clone()).await.as_deref(),
        Some("Terminating:Wait")
    );
    let seen = eventually("target-lifecycle-state Terminated", || async {
        get(&c, TARGET).await.ok().filter(|s| s == "Terminated")
    })
    .await;
    assert_eq!(seen, "Terminated");
    // Once terminated, the instance and its IMDS are gone.
    h.advance(601.0).await;
    assert_eq!(get(&c, "/latest/meta-data/instance-id").await, Err(404));
}
