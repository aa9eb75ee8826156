"""`manage.py live_asyncapi`: the AsyncAPI 3.0 document of the live socket (rest_live/asyncapi/).

python manage.py live_asyncapi                          # JSON, to stdout
python manage.py live_asyncapi --output asyncapi.json   # to a file
python manage.py live_asyncapi --format yaml            # YAML (needs PyYAML)
"""

import json

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Write the AsyncAPI 3.0.0 document of the live subscription websocket: its frames, and "
        "each live view's instance schema as drf-spectacular gives it for the REST API."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", help="Write to this file (default: stdout).")
        parser.add_argument(
            "--format", dest="output_format", choices=["json", "yaml"], default="json"
        )
        parser.add_argument("--title", help="info.title (default: the project's name).")

    def handle(self, *args, output, output_format, title, **options):
        try:
            from rest_live.asyncapi import AsyncAPIError, build_document
        except ImportError as error:
            if not (error.name or "").startswith("drf_spectacular"):
                raise
            raise CommandError(
                "live_asyncapi needs drf-spectacular, which requirements.txt pins: "
                "pip install -r requirements.txt."
            ) from None
        warnings = []
        try:
            document = build_document(title=title, warnings=warnings)
        except AsyncAPIError as error:
            raise CommandError(str(error)) from None
        for warning in warnings:
            self.stderr.write(f"drf-spectacular: {warning}")
        text = self._render(document, output_format)
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            with open(output, "w", encoding="utf-8") as file:
                file.write(text)
        except OSError as error:
            raise CommandError(
                f"Cannot write the document to {output}: {error.strerror}."
            ) from None
        if options["verbosity"] > 0:
            self.stderr.write(f"Wrote the AsyncAPI document to {output}")

    def _render(self, document, output_format):
        if output_format == "yaml":
            try:
                import yaml
            except ImportError:
                raise CommandError("--format yaml needs PyYAML: pip install pyyaml.") from None
            # Through JSON, so that schemas used twice are written twice, not as YAML aliases.
            plain = json.loads(json.dumps(document))
            return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
