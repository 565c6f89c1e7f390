"""Login with a brake on guessing: a few failures per user and address, then a wait."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse


def _key(request: HttpRequest) -> str:
    username = request.POST.get("username", "").lower()[:150]
    address = request.META.get("REMOTE_ADDR", "")
    return f"login-failures:{address}:{username}"


class LoginView(auth_views.LoginView):
    template_name = "agents/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if cache.get(_key(request), 0) >= settings.SWITCHBOARD_LOGIN_ATTEMPTS:
            response = self.render_to_response(
                self.get_context_data(locked=True, form=self.get_form())
            )
            response.status_code = 429
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        key = _key(self.request)
        cache.add(key, 0, timeout=settings.SWITCHBOARD_LOGIN_LOCKOUT_SECONDS)
        cache.incr(key)
        return super().form_invalid(form)

    def form_valid(self, form):
        cache.delete(_key(self.request))
        return super().form_valid(form)
