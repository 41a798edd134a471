"""Research beside the product: each folder asks one question, with its command and its result in a README."""
