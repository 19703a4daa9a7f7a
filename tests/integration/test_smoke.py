from sqlalchemy import select

from app.extensions import db
from app.models import Person, Role


def test_login_page_renders_after_setup(client, make_member):
    make_member(Role.ADMIN)
    response = client.get("/login")
    assert response.status_code == 200
    assert b"Sign in" in response.data


def test_admin_creates_a_person_through_the_form(client, make_member, login_as):
    user = make_member(Role.ADMIN)
    login_as(user)
    response = client.post("/people/new", data={"email": "Grace@Example.com", "name": "Grace Hopper", "active": "y"})
    assert response.status_code == 302
    person = db.session.scalars(select(Person).where(Person.email == "grace@example.com")).one()
    assert person.name == "Grace Hopper"
    listing = client.get("/people/?q=grace")
    assert b"Grace Hopper" in listing.data
