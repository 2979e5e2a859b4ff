"""The organisation key directory: age recipients and device keys signed by the offline root key."""
