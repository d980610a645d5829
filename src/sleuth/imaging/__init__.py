"""Image bytes to records: safe decode (`decode`), exact (R+G+B)/3 gray (`gray`), imagehash-
identical pHash (`phash`, with `lanczos`), the stored gray container and previews (`encode`),
the per-image kernel (`process`) and magic-byte sniffing (`sniff`). Pure functions, for a
process pool."""
