import pytest

pytest_plugins = ["tests.plugins.simulator"]


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_superuser("staff", "staff@example.com", "password")
