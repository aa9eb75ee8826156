# One warning from each kind of logger: Django's, rest_live's, and an app's ("shop").
import logging

logging.getLogger("django.request").warning("marker-django")
logging.getLogger("rest_live.feed").warning("marker-rest-live")
logging.getLogger("shop.views").warning("marker-app")
