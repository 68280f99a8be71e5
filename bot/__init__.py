"""The GitHub App server: signed webhooks in, acknowledged runs out (`ml-intern serve`)."""
