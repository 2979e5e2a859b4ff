"""Pure checks on what clients send sealed and signed: bytes in, a Struct or a domain error out.

No I/O and no framework here, so the same checks run in routes, in batch jobs and in tests, and
the rules can be read on one screen: `age_header` for the form of an age v1 ciphertext,
`signatures` for the exact bytes a device signs and how the server verifies them.
"""
