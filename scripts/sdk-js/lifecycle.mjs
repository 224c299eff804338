// The lifecycle flow of the lifehook sandbox with the AWS SDK for JavaScript v3: a launch
// hook notifies an SQS queue, the message is received, the action heartbeated and
// completed CONTINUE, the instance goes InService. Run by scripts/sdk-compat.sh, which
// starts the sandbox and sets AWS_ENDPOINT_URL (read by the SDK itself), fake credentials
// and the region. Exits non-zero, saying what differed, on any failure.
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  DescribeAutoScalingInstancesCommand,
  RecordLifecycleActionHeartbeatCommand,
  CompleteLifecycleActionCommand,
} from "@aws-sdk/client-auto-scaling";
import {
  SQSClient,
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  DeleteMessageCommand,
} from "@aws-sdk/client-sqs";

const asg = new AutoScalingClient({});
const sqs = new SQSClient({});

function check(cond, what) {
  if (!cond) throw new Error(what);
}

async function stateOf(id) {
  const r = await asg.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [id] }));
  return r.AutoScalingInstances?.[0]?.LifecycleState;
}

const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: "js-hooks" }));
const attrs = await sqs.send(
  new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["QueueArn"] }),
);
const arn = attrs.Attributes.QueueArn;
await asg.send(
  new CreateAutoScalingGroupCommand({
    AutoScalingGroupName: "js-web",
    MinSize: 0,
    MaxSize: 2,
    DesiredCapacity: 1,
    AvailabilityZones: ["us-east-1a"],
    LaunchTemplate: { LaunchTemplateName: "lt-web", Version: "$Latest" },
    LifecycleHookSpecificationList: [
      {
        LifecycleHookName: "launch",
        LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
        NotificationTargetARN: arn,
        RoleARN: "arn:aws:iam::000000000000:role/asg-notify",
        HeartbeatTimeout: 300,
        DefaultResult: "ABANDON",
      },
    ],
  }),
);

// The test notification and the launch action, in the order Auto Scaling sent them.
const action = await (async () => {
  for (let i = 0; i < 20; i++) {
    const r = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    for (const m of r.Messages ?? []) {
      await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: m.ReceiptHandle }));
      const body = JSON.parse(m.Body);
      if (body.LifecycleActionToken) return body;
    }
  }
  throw new Error("no lifecycle action message in the queue");
})();
check(action.LifecycleTransition === "autoscaling:EC2_INSTANCE_LAUNCHING", `transition: ${action.LifecycleTransition}`);
check(action.AutoScalingGroupName === "js-web", `group: ${action.AutoScalingGroupName}`);
const id = action.EC2InstanceId;
check((await stateOf(id)) === "Pending:Wait", `before: ${await stateOf(id)}`);
const target = {
  AutoScalingGroupName: "js-web",
  LifecycleHookName: "launch",
  LifecycleActionToken: action.LifecycleActionToken,
};
await asg.send(new RecordLifecycleActionHeartbeatCommand(target));
await asg.send(new CompleteLifecycleActionCommand({ ...target, LifecycleActionResult: "CONTINUE" }));
check((await stateOf(id)) === "InService", `after: ${await stateOf(id)}`);

// A second completion is Auto Scaling's ValidationError, as on AWS.
let refused = null;
try {
  await asg.send(new CompleteLifecycleActionCommand({ ...target, LifecycleActionResult: "CONTINUE" }));
} catch (e) {
  refused = e;
}
check(refused && refused.name === "ValidationError", `second completion: ${refused?.name}`);
console.log("javascript (AWS SDK v3): lifecycle flow passed");
