#!/usr/bin/env python3
"""Prints the CloudFormation that the AWS::Serverless transform makes of a SAM template,
as JSON, offline: the transform CloudFormation runs on `sam deploy`, done here by
aws-sam-translator (the library behind it) so that tests can check its output.

    sam_translate.py TEMPLATE [Name=Value ...]

Parameters without a default must be given. Exit status 1, with the translator's
messages on stderr, if the template does not transform.
"""

import json
import sys

import boto3
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as file:
        template = yaml_parse(file.read())
    parameters = dict(arg.split("=", 1) for arg in argv[2:])
    # `sam deploy` uploads each local CodeUri and puts its s3:// URI in the template before
    # CloudFormation transforms it; stand in for that upload.
    for name, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties") or {}
        code_uri = properties.get("CodeUri")
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(code_uri, str):
            if not code_uri.startswith("s3://"):
                properties["CodeUri"] = f"s3://sam-artifacts/{name}.zip"
    # A region for the pseudo parameters; no call is made with this session.
    session = boto3.session.Session(region_name="us-east-1")
    try:
        output = Translator(managed_policy_map={}, sam_parser=Parser(), boto_session=session).translate(
            sam_template=template, parameter_values=parameters
        )
    except InvalidDocumentException as error:
        for cause in error.causes:
            print(f"sam-translator: {cause.message}", file=sys.stderr)
        return 1
    json.dump(output, sys.stdout, indent=1, sort_keys=True, default=str)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
