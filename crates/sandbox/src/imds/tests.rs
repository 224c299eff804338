use super::*;
use crate::{ClockMode, SandboxConfig};

struct Env {
    sb: crate::RunningSandbox,
    http: reqwest::Client,
}

impl Env {
    async fn new() -> Env {
        let sb = crate::start(SandboxConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            clock: ClockMode::Manual,
            ..Default::default()
        })
        .await
        .unwrap();
        Env {
            sb,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sb.endpoint())
    }

    async fn instance(&self, tags: serde_json::Value) -> String {
        let v: serde_json::Value = self
            .http
            .post(self.url("/_sandbox/ec2/instances"))
            .json(&json!({ "tags": tags }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["instance_id"].as_str().unwrap().to_owned()
    }

    async fn token(&self, id: &str, ttl: &str) -> reqwest::Response {
        self.http
            .put(self.url(&format!("/_imds/{id}/latest/api/token")))
            .header(TTL_HEADER, ttl)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, id: &str, item: &str, token: &str) -> (u16, String) {
        let r = self
            .http
            .get(self.url(&format!("/_imds/{id}/latest/{item}")))
            .header(TOKEN_HEADER, token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

#[tokio::test]
async fn token_flow_items_and_expiry_on_virtual_time() {
    let e = Env::new().await;
    let id = e.instance(json!({"Name": "box", "bad key": "x"})).await;
    for bad in ["0", "21601", "x"] {
        assert_eq!(e.token(&id, bad).await.status(), 400, "ttl {bad}");
    }
    let r = e
        .http
        .put(e.url(&format!("/_imds/{id}/latest/api/token")))
        .header(TTL_HEADER, "60")
        .header("x-forwarded-for", "1.2.3.4")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = e.token(&id, "60").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()[TTL_HEADER], "60");
    let token = r.text().await.unwrap();

    assert_eq!(e.get(&id, "meta-data/instance-id", "nope").await.0, 401);
    assert_eq!(
        e.get(&id, "meta-data/instance-id", &token).await,
        (200, id.clone())
    );
    assert_eq!(
        e.get(&id, "meta-data/placement/region", &token).await,
        (200, "us-east-1".into())
    );
    assert_eq!(
        e.get(&id, "meta-data/placement/availability-zone", &token)
            .await,
        (200, "us-east-1a".into())
    );
    let (s, doc) = e
        .get(&id, "dynamic/instance-identity/document", &token)
        .await;
    assert_eq!(s, 200);
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["instanceId"], id.as_str());
    assert_eq!(doc["accountId"], "000000000000");
    let (s, list) = e.get(&id, "meta-data/", &token).await;
    assert_eq!(s, 200);
    assert!(list.lines().any(|l| l == "instance-id"));
    assert!(list.lines().any(|l| l == "placement/"));
    assert!(
        !list.contains("autoscaling/"),
        "standalone: no target state"
    );
    assert_eq!(
        e.get(&id, "meta-data/autoscaling/target-lifecycle-state", &token)
            .await
            .0,
        404
    );
    assert_eq!(
        e.get(&id, "meta-data/tags/instance", &token).await,
        (200, "Name".into()),
        "keys with spaces are not exposed"
    );
    assert_eq!(
        e.get(&id, "meta-data/tags/instance/Name", &token).await,
        (200, "box".into())
    );
    assert_eq!(e.get(&id, "meta-data/nope", &token).await.0, 404);
    // Another instance's token is not valid here; unknown instances are 404.
    let other = e.instance(json!({})).await;
    assert_eq!(e.get(&other, "meta-data/instance-id", &token).await.0, 401);
    assert_eq!(
        e.get("i-0123456789abcdef0", "meta-data/instance-id", &token)
            .await
            .0,
        404
    );
    // Tags can be switched off.
    e.sb.sandbox.lock().behaviour.ec2.instance_metadata_tags = false;
    assert_eq!(e.get(&id, "meta-data/tags/instance", &token).await.0, 404);
    // The token expires on virtual time.
    e.sb.sandbox.advance(61_000);
    assert_eq!(e.get(&id, "meta-data/instance-id", &token).await.0, 401);
}

#[tokio::test]
async fn group_instances_report_their_target_lifecycle_state() {
    let e = Env::new().await;
    let id = {
        let mut w = e.sb.sandbox.lock();
        let ctx = crate::protocol::RequestCtx {
            request_id: "r".into(),
            region: "us-east-1".into(),
            host: "h".into(),
            path: "/".into(),
            service: crate::protocol::Service::AutoScaling,
            wire: crate::protocol::Wire::Query,
            op: "CreateAutoScalingGroup".into(),
        };
        let p = crate::protocol::Params::from_pairs([
            ("AutoScalingGroupName", "web"),
            ("MinSize", "0"),
            ("MaxSize", "2"),
            ("DesiredCapacity", "1"),
            ("LaunchTemplate.LaunchTemplateName", "lt-web"),
            ("AvailabilityZones.member.1", "us-east-1b"),
            (
                "LifecycleHookSpecificationList.member.1.LifecycleHookName",
                "up",
            ),
            (
                "LifecycleHookSpecificationList.member.1.LifecycleTransition",
                "autoscaling:EC2_INSTANCE_LAUNCHING",
            ),
        ]);
        crate::autoscaling::ops::dispatch(&mut w, &ctx, &p).unwrap();
        w.region("us-east-1")
            .autoscaling
            .members("web")
            .next()
            .unwrap()
            .id
            .clone()
    };
    let token = e.token(&id, "21600").await.text().await.unwrap();
    assert_eq!(
        e.get(&id, "meta-data/autoscaling/target-lifecycle-state", &token)
            .await,
        (200, "InService".into()),
        "already InService during Pending:Wait"
    );
    assert_eq!(
        e.get(
            &id,
            "meta-data/tags/instance/aws:autoscaling:groupName",
            &token
        )
        .await,
        (200, "web".into())
    );
    assert_eq!(
        e.get(&id, "meta-data/placement/availability-zone", &token)
            .await,
        (200, "us-east-1b".into())
    );
}
