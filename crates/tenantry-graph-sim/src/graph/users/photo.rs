//! A user's photo.

use super::*;

/// Profile photos: JPEG or PNG, at most 4 MB (graph-facts §6.8). Answers 200 as the docs
/// of the reference version say (newer docs may say 204: UNVERIFIED).
pub(super) fn photo(state: &SimState, caller: &Caller, call: &Call<'_>, index: u32) -> Outcome {
    caller.require(&["User.ReadWrite.All"])?;
    let content_type = call.content_type.as_deref().unwrap_or("");
    if !content_type.starts_with("image/jpeg") && !content_type.starts_with("image/png") {
        return Err(GraphError::bad_request(
            "Content-Type must be image/jpeg or image/png.",
        ));
    }
    if call.body.len() > 4 * 1024 * 1024 {
        return Err(GraphError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestBodyTooLarge",
            "The request body is larger than 4 MB.",
        ));
    }
    if call.body.is_empty() {
        return Err(GraphError::bad_request("The photo is empty."));
    }
    state.world_mut().tenants[caller.tenant]
        .photos
        .insert(index, call.body.len());
    Ok(Reply {
        status: StatusCode::OK,
        body: None,
    })
}
