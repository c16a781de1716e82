//! The ticks table as a JSON-lines file of DynamoDB JSON items (one item per line). Appending is
//! the write; reading keeps the last item per key, which gives put semantics to replays.
