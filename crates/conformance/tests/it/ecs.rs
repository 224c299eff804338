//! ECS through aws-sdk-ecs.
