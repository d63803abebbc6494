pub(crate) async fn run(_client: kube::Client, _config: std::sync::Arc<crate::ControllersConfig>) {}
