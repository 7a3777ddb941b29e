"""factory-boy factories for the gateway's models."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

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


class TokenFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Token

    user = factory.SubFactory(UserFactory)


class SynthesisJobFactory(factory.django.DjangoModelFactory):
    """A job row as submit writes it (no outbox record: use services.job_submit for that)."""

    class Meta:
        model = SynthesisJob

    owner = factory.SubFactory(UserFactory)
    text = "Hello world. This is a test."
    voice = "en_US-joe-medium"
    params = factory.LazyFunction(dict)
    length_class = LengthClass.SHORT
    status = JobStatus.QUEUED
    sentence_count = 2
    sample_rate = 22050
