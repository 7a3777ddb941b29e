"""factory-boy factories for the gateway's models."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from gateway.apikeys import api_key_create
from gateway.models import JobStatus, LengthClass, SynthesisJob


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("pw-for-tests")


class StaffFactory(UserFactory):
    is_staff = True
    is_superuser = True


def api_key_for(user: object | None = None, **kwargs: object) -> str:
    """A new API key (the raw key, as a client holds it) for `user`, or for a new user."""
    _, raw_key = api_key_create(owner=user or UserFactory(), name=str(kwargs.pop("name", "test")), **kwargs)
    return raw_key


class SynthesisJobFactory(factory.django.DjangoModelFactory):
    """A job row as submit writes it (no outbox record: use services.job_submit for that)."""

    class Meta:
        model = SynthesisJob

    owner = factory.SubFactory(UserFactory)
    text = "Hello world. This is a test."
    text_chars = factory.LazyAttribute(lambda job: len(job.text))
    voice = "en_US-joe-medium"
    params = factory.LazyFunction(dict)
    length_class = LengthClass.SHORT
    status = JobStatus.QUEUED
    sentence_count = 2
    sample_rate = 22050
