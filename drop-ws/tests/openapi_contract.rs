//! The OpenAPI document the server serves is committed beside the web_drop
//! client (`examples/web_drop/client/openapi.json`), which generates its
//! TypeScript API types from it. This test fails when the two differ, so a
//! change to the API cannot leave the client's types stale.
//!
//! After an intended API change, rewrite the file and regenerate the types:
//!
//! ```text
//! DROPKIT_BLESS=1 cargo test -p drop-ws --test openapi_contract
//! (cd examples/web_drop/client && npm run gen:api)
//! ```

use std::path::PathBuf;

#[test]
fn the_committed_openapi_document_is_the_servers() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/web_drop/client/openapi.json");
    let mut served = serde_json::to_string_pretty(&drop_ws::openapi_document(""))
        .expect("the document serialises");
    served.push('\n');
    if std::env::var_os("DROPKIT_BLESS").is_some() {
        std::fs::write(&path, &served).expect("write openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == served,
        "{} is stale: rerun with DROPKIT_BLESS=1 and regenerate the client's types \
         (npm run gen:api)",
        path.display()
    );
}
