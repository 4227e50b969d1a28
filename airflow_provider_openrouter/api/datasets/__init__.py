"""One module per OpenRouter dataset: endpoint, parameters, validation, partition layout, citation.

A new dataset is one module here plus its operator. What every dataset shares lives here.
"""

LICENSE = "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); attribute OpenRouter and keep the meta block."

CAVEATS = (
    "Public OpenRouter traffic only, not global model usage. Token counts come from each upstream "
    "provider's own tokenizer, so tokens are not comparable across providers."
)
