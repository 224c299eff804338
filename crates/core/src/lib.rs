//! Handler logic that needs no AWS SDK: configuration, routing of lifecycle actions to
//! pipelines, the steps that run locally, the completion policy and keepalive planning.
