"""Many tasks to the django-q2 broker in one round trip.

`async_task(..., broker=...)` builds, signs and hands each package to the
broker it is given; `BatchedBroker` stands in for the real one, keeps the
packages, and sends them all at `flush()`: one RPUSH of every package for the
Redis broker, one bulk INSERT for the ORM broker, one enqueue per package for
any other. With `Q_CLUSTER["sync"]` on, async_task runs each task itself and
never calls the broker, so there is nothing to flush.
"""

from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf
from django_q.models import OrmQ


class BatchedBroker:
    def __init__(self, list_key=None):
        self.broker = get_broker(list_key)
        self.list_key = self.broker.list_key
        self.packages = []

    def enqueue(self, package):
        self.packages.append(package)
        return len(self.packages)

    def flush(self):
        """Send what was collected; returns how many packages went."""
        packages, self.packages = self.packages, []
        if not packages:
            return 0
        if isinstance(self.broker, Redis):
            self.broker.connection.rpush(self.list_key, *packages)
        elif isinstance(self.broker, ORM):
            now = timezone.now()
            key = self.list_key or Conf.CLUSTER_NAME
            OrmQ.objects.using(Conf.ORM).bulk_create([OrmQ(key=key, payload=p, lock=now) for p in packages])
        else:
            for package in packages:
                self.broker.enqueue(package)
        return len(packages)
