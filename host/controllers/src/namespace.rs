pub(crate) async fn run(_client: kube::Client) {}
