//! What the component tests share: serving one double's router on a loopback port.

use anyhow::Result;

/// Serves a router on an ephemeral loopback port until dropped.
pub struct Served {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts serving `router`.
pub async fn serve(router: axum::Router) -> Result<Served> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(Served { url, task })
}
