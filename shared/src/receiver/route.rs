//! Which collection a request is for: API Gateway's `{collection}` path parameter, or the
//! path's `…/webhooks/<name>`; anything else is 404.

use crate::collection::Collection;
use crate::receiver::error::ReceiveError;
use lambda_http::{Request, RequestExt};

/// The collection named by the route: API Gateway's path parameter where it gives one, else
/// the path itself (`cargo lambda watch` sets no path parameters).
pub fn route_collection(request: &Request) -> Result<Collection, ReceiveError> {
    let from_parameters = request.path_parameters_ref().and_then(|p| p.first("collection").map(str::to_owned));
    let name = match from_parameters {
        Some(name) => name,
        None => collection_from_path(request.uri().path()).ok_or(ReceiveError::NoRoute)?.to_owned(),
    };
    name.parse().map_err(|e: crate::collection::UnknownCollection| ReceiveError::UnknownCollection(e.0))
}

/// `…/webhooks/<name>` (with an optional trailing slash and any stage prefix) → `<name>`.
pub(super) fn collection_from_path(path: &str) -> Option<&str> {
    let mut segments = path.trim_end_matches('/').rsplit('/');
    let name = segments.next().filter(|s| !s.is_empty())?;
    (segments.next()? == "webhooks").then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receiver::fixtures::*;
    use lambda_http::aws_lambda_events::query_map::QueryMap;
    use std::collections::HashMap;

    #[tokio::test]
    async fn unknown_collections_and_routes_are_404() {
        let r = receiver();
        let (status, body) = answer(&r, signed("/webhooks/holidays", "{}")).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_collection")));
        let (status, body) = answer(&r, signed("/other/clockings", "{}")).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("no_route")));
    }
    #[tokio::test]
    async fn path_parameters_from_api_gateway_take_precedence() {
        let r = receiver();
        let body = r#"{"id":1,"changeVersion":"5"}"#;
        let req = signed("/prod/anything", body)
            .with_path_parameters(QueryMap::from(HashMap::from([("collection".to_string(), "clockings".to_string())])));
        assert_eq!(answer(&r, req).await.0, 200);
    }
    #[tokio::test]
    async fn stage_prefixes_and_trailing_slashes_are_routed() {
        let r = receiver();
        let body = r#"{"id":1,"changeVersion":"5"}"#;
        assert_eq!(answer(&r, signed("/prod/webhooks/clockings/", body)).await.0, 200);
    }
}
