"""Create the benchmark's agents: `python -m bench.seed COUNT CAPACITY PASSWORD`.

Run with the stack's environment (DJANGO_SETTINGS_MODULE=bench.settings). Each agent
is a user in the Agents group with a routing worker that speaks Spanish and English
(so every demo queue fits) and holds up to CAPACITY chats. Prints the usernames as
JSON on its last line.
"""

import json
import sys


def seed(count: int, capacity: int, password: str) -> list[str]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group

    from routing import services as routing

    users = get_user_model()
    agents, _ = Group.objects.get_or_create(name="Agents")
    # Hashing is slow on purpose: hash once, every agent shares the password.
    hashed = make_password(password)
    names = [f"agent{number:03d}" for number in range(1, count + 1)]
    for name in names:
        user, _ = users.objects.update_or_create(
            username=name, defaults={"password": hashed, "first_name": name.title()}
        )
        user.groups.add(agents)
        if not hasattr(user, "worker"):
            routing.create_worker(
                name=name,
                attributes={"languages": ["es", "en"]},
                capacity={"chat": capacity},
                user=user,
            )
    return names


def main() -> None:
    import django

    django.setup()
    count, capacity, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    print(json.dumps(seed(count, capacity, password)))


if __name__ == "__main__":
    main()
