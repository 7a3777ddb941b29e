from django.urls import path

from . import account_apis, apis

app_name = "gateway"

urlpatterns = [
    path("jobs", apis.JobListCreateApi.as_view(), name="jobs"),
    path("jobs/batch", apis.JobBatchApi.as_view(), name="jobs-batch"),
    path("jobs/<str:job_id>", apis.JobDetailApi.as_view(), name="job-detail"),
    path("jobs/<str:job_id>/audio", apis.JobAudioApi.as_view(), name="job-audio"),
    path("jobs/<str:job_id>/cancel", apis.JobCancelApi.as_view(), name="job-cancel"),
    path("validate", apis.ValidateApi.as_view(), name="validate"),
    path("voices", apis.VoiceListApi.as_view(), name="voices"),
    path("me", account_apis.MeApi.as_view(), name="me"),
]
