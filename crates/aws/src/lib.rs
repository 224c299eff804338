//! AWS adapters for lifehook: every AWS client is built here, from one configuration
//! that honours `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`.
