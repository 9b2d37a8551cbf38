"""JWT mode: claim rules, hostile tokens, the signing keys, the verified-token cache, Wycheproof vectors."""
