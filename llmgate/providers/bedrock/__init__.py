"""Amazon Bedrock (boto3 ``bedrock-runtime``): ``provider.py`` holds the SDK-bound parts,
``_convert.py`` the pure request and result translation."""

from .provider import BedrockProvider

__all__ = ["BedrockProvider"]
