"""The lifecycle flow of the lifehook sandbox, driven by boto3 and by the AWS CLI.

Run by scripts/sdk-compat.sh, which starts the sandbox and sets AWS_ENDPOINT_URL.
Prints `N passed, N failed` and exits non-zero on any failure.
"""

import json
import os
import subprocess
import sys
import traceback
import urllib.request

import boto3
from botocore.exceptions import ClientError

ENDPOINT = os.environ["AWS_ENDPOINT_URL"]
ROLE = "arn:aws:iam::000000000000:role/asg-notify"
LT = {"LaunchTemplateName": "lt-web", "Version": "$Latest"}

asg = boto3.client("autoscaling")
sqs = boto3.client("sqs")
sns = boto3.client("sns")
events = boto3.client("events")


def advance(seconds):
    req = urllib.request.Request(
        f"{ENDPOINT}/_sandbox/clock/advance",
        data=json.dumps({"seconds": seconds}).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=10).read()


def reset():
    req = urllib.request.Request(f"{ENDPOINT}/_sandbox/reset", data=b"{}", method="POST")
    urllib.request.urlopen(req, timeout=10).read()


def aws(*args):
    # AWS CLI v1 does not read AWS_ENDPOINT_URL for every service; pass it explicitly.
    out = subprocess.run(["aws", *args, "--endpoint-url", ENDPOINT, "--output", "json"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed ({out.returncode}): {out.stderr}")
    return json.loads(out.stdout) if out.stdout.strip() else {}


def receive_all(url, n=10):
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=n, WaitTimeSeconds=0).get("Messages", [])
    return msgs


def state_of(instance_id):
    r = asg.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    return r[0]["LifecycleState"] if r else None


def make_group(name, queue_arn, desired=1):
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        MinSize=0,
        MaxSize=3,
        DesiredCapacity=desired,
        LaunchTemplate=LT,
        AvailabilityZones=["us-east-1a"],
        LifecycleHookSpecificationList=[
            {
                "LifecycleHookName": "launch",
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
                "NotificationTargetARN": queue_arn,
                "RoleARN": ROLE,
                "HeartbeatTimeout": 300,
                "DefaultResult": "ABANDON",
                "NotificationMetadata": '{"app":"web"}',
            },
            {
                "LifecycleHookName": "terminate",
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                "NotificationTargetARN": queue_arn,
                "RoleARN": ROLE,
                "HeartbeatTimeout": 300,
                "DefaultResult": "CONTINUE",
            },
        ],
    )


def lifecycle_messages(url):
    out = []
    for m in receive_all(url):
        body = json.loads(m["Body"])
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        out.append(body)
    return out


def test_boto3_launch_continue_and_terminate():
    url = sqs.create_queue(QueueName="boto-hooks")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    make_group("boto-web", arn)
    msgs = lifecycle_messages(url)
    tests = [m for m in msgs if m.get("Event") == "autoscaling:TEST_NOTIFICATION"]
    actions = [m for m in msgs if "LifecycleActionToken" in m]
    assert tests, f"no test notification in {msgs}"
    assert len(actions) == 1, msgs
    a = actions[0]
    assert a["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"
    assert a["NotificationMetadata"] == '{"app":"web"}'
    assert a["Service"] == "AWS Auto Scaling"
    iid = a["EC2InstanceId"]
    assert state_of(iid) == "Pending:Wait"
    asg.record_lifecycle_action_heartbeat(
        AutoScalingGroupName="boto-web", LifecycleHookName="launch", LifecycleActionToken=a["LifecycleActionToken"]
    )
    asg.complete_lifecycle_action(
        AutoScalingGroupName="boto-web",
        LifecycleHookName="launch",
        LifecycleActionToken=a["LifecycleActionToken"],
        LifecycleActionResult="CONTINUE",
    )
    assert state_of(iid) == "InService"
    asg.set_desired_capacity(AutoScalingGroupName="boto-web", DesiredCapacity=0)
    assert state_of(iid) == "Terminating:Wait"
    term = [m for m in lifecycle_messages(url) if "LifecycleActionToken" in m]
    assert term and term[0]["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    # Let the heartbeat timeout apply DefaultResult=CONTINUE.
    advance(301)
    assert state_of(iid) in (None, "Terminated"), state_of(iid)


def test_boto3_unknown_token_error():
    url = sqs.create_queue(QueueName="boto-err")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    make_group("boto-err", arn, desired=0)
    token = "bcd2f1b8-9a78-44d3-8a7a-4dd07d7cf635"
    try:
        asg.complete_lifecycle_action(
            AutoScalingGroupName="boto-err",
            LifecycleHookName="launch",
            LifecycleActionToken=token,
            LifecycleActionResult="CONTINUE",
        )
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ValidationError", e.response
        assert e.response["Error"]["Message"] == f"No active Lifecycle Action found with token {token}", e.response
    else:
        raise AssertionError("completing an unknown token succeeded")


def test_boto3_sqs_md5_and_attributes():
    url = sqs.create_queue(QueueName="boto-md5")["QueueUrl"]
    sqs.send_message(
        QueueUrl=url,
        MessageBody="héllo wörld",
        MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}, "n": {"DataType": "Number", "StringValue": "7"}},
    )
    m = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], AttributeNames=["All"])["Messages"][0]
    assert m["Body"] == "héllo wörld"
    assert m["MessageAttributes"]["k"]["StringValue"] == "v"
    assert m["Attributes"]["ApproximateReceiveCount"] == "1"


def test_boto3_sns_envelope():
    url = sqs.create_queue(QueueName="boto-sns")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = sns.create_topic(Name="boto-topic")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    sns.publish(TopicArn=topic, Message="hi", Subject="s")
    body = json.loads(sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"])
    assert body["Type"] == "Notification" and body["Message"] == "hi" and body["TopicArn"] == topic


def test_boto3_eventbridge_rule_to_sqs():
    url = sqs.create_queue(QueueName="boto-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="boto-lifecycle",
        EventPattern=json.dumps({"source": ["aws.autoscaling"], "detail-type": ["EC2 Instance-launch Lifecycle Action"]}),
    )
    events.put_targets(Rule="boto-lifecycle", Targets=[{"Id": "q", "Arn": arn}])
    asg.create_auto_scaling_group(
        AutoScalingGroupName="boto-eb",
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=1,
        LaunchTemplate=LT,
        AvailabilityZones=["us-east-1a"],
        LifecycleHookSpecificationList=[
            {"LifecycleHookName": "launch", "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING", "HeartbeatTimeout": 60}
        ],
    )
    ev = json.loads(sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"])
    assert ev["detail-type"] == "EC2 Instance-launch Lifecycle Action", ev
    assert ev["detail"]["AutoScalingGroupName"] == "boto-eb"


def test_aws_cli_lifecycle_flow():
    q = aws("sqs", "create-queue", "--queue-name", "cli-hooks")["QueueUrl"]
    arn = aws("sqs", "get-queue-attributes", "--queue-url", q, "--attribute-names", "QueueArn")["Attributes"]["QueueArn"]
    aws(
        "autoscaling", "create-auto-scaling-group", "--auto-scaling-group-name", "cli-web",
        "--min-size", "0", "--max-size", "2", "--desired-capacity", "0",
        "--launch-template", "LaunchTemplateName=lt-web,Version=$Latest", "--availability-zones", "us-east-1a",
    )
    aws(
        "autoscaling", "put-lifecycle-hook", "--auto-scaling-group-name", "cli-web", "--lifecycle-hook-name", "launch",
        "--lifecycle-transition", "autoscaling:EC2_INSTANCE_LAUNCHING", "--heartbeat-timeout", "120",
        "--notification-target-arn", arn, "--role-arn", ROLE,
    )
    hooks = aws("autoscaling", "describe-lifecycle-hooks", "--auto-scaling-group-name", "cli-web")["LifecycleHooks"]
    assert hooks[0]["GlobalTimeout"] == 12000, hooks
    aws("autoscaling", "set-desired-capacity", "--auto-scaling-group-name", "cli-web", "--desired-capacity", "1")
    inst = aws("autoscaling", "describe-auto-scaling-groups", "--auto-scaling-group-names", "cli-web")["AutoScalingGroups"][0]["Instances"]
    assert len(inst) == 1 and inst[0]["LifecycleState"] == "Pending:Wait", inst
    iid = inst[0]["InstanceId"]
    aws(
        "autoscaling", "complete-lifecycle-action", "--auto-scaling-group-name", "cli-web", "--lifecycle-hook-name", "launch",
        "--instance-id", iid, "--lifecycle-action-result", "CONTINUE",
    )
    st = aws("autoscaling", "describe-auto-scaling-instances", "--instance-ids", iid)["AutoScalingInstances"][0]
    assert st["LifecycleState"] == "InService" and st["HealthStatus"] == "HEALTHY", st
    msgs = aws("sqs", "receive-message", "--queue-url", q, "--max-number-of-messages", "10").get("Messages", [])
    assert any("TEST_NOTIFICATION" in m["Body"] for m in msgs), msgs


def main():
    passed = failed = 0
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            reset()
            try:
                fn()
                passed += 1
                print(f"ok   {name}")
            except Exception:
                failed += 1
                print(f"FAIL {name}")
                traceback.print_exc()
    print(f"sdk-compat: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
