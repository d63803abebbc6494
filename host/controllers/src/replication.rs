pub(crate) async fn run_replication_controllers(_client: kube::Client) {}
pub(crate) async fn run_replica_sets(_client: kube::Client) {}
