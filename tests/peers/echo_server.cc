/*
 * tests/peers/echo_server.cc: the C++ (grpc++) meshd.test.Echo / meshd.test.Other server.
 *
 * The same behaviour as echo_server.py (see proto/echo.proto), plus grpc++'s default
 * grpc.health.v1 service and its reflection plugin (grpc.reflection.v1alpha in 1.51). It is
 * also the benchmark backend, so Unary runs on the callback API with no per-call logging.
 *
 *   meshd-echo-server-cc --port 0 --id cc1 [--host 127.0.0.1] [--extra-ports N]
 * prints "listening on PORT" when ready; with --extra-ports N it listens on N more ports (each
 * picked by the kernel, the same services on all: many instances in one process, for the
 * monitor's benchmark) and first prints "extra ports P1,P2,...". SIGUSR1 sets every health status
 * NOT_SERVING, SIGUSR2 sets them SERVING; SIGTERM/SIGINT stop the server.
 */
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "echo.grpc.pb.h"

using grpc::ServerContext;
using grpc::Status;
using meshd::test::EchoReply;
using meshd::test::EchoRequest;

namespace
{

constexpr int kMaxMessage = 64 * 1024 * 1024;
const char *const kServices[] = {"meshd.test.Echo", "meshd.test.Other"};

std::string g_id = "cc";
grpc::Server *g_server = nullptr;

/* What the server records across calls (Stats). */
struct Record {
    std::mutex mu;
    std::vector<std::string> cancelled;
    std::multiset<std::string> active;
    std::atomic<uint64_t> started{0}, finished{0};

    void cancel(const std::string &call_id)
    {
        std::lock_guard<std::mutex> lock(mu);
        cancelled.push_back(call_id);
    }

    void set_active(const std::string &call_id, bool on)
    {
        if (call_id.empty())
            return;
        std::lock_guard<std::mutex> lock(mu);
        if (on) {
            active.insert(call_id);
        } else {
            auto it = active.find(call_id);
            if (it != active.end())
                active.erase(it);
        }
    }
} g_record;

/* Lists a call under its call_id in Stats.active_call_ids while it runs. */
class ActiveCall
{
  public:
    void set(const std::string &call_id)
    {
        if (id_.empty() && !call_id.empty()) {
            id_ = call_id;
            g_record.set_active(id_, true);
        }
    }
    ~ActiveCall()
    {
        g_record.set_active(id_, false);
    }

  private:
    std::string id_;
};

/* n bytes of the repeating 0..255 pattern (what reply_size asks for). */
std::string pattern(size_t n)
{
    std::string s(n, '\0');
    for (size_t i = 0; i < n; i++)
        s[i] = static_cast<char>(i & 0xff);
    return s;
}

void set_all_health(bool serving)
{
    auto *h = g_server->GetHealthCheckService();
    h->SetServingStatus(serving);
    for (const char *s : kServices)
        h->SetServingStatus(s, serving);
}

int64_t remaining_ms(std::chrono::system_clock::time_point deadline)
{
    if (deadline == std::chrono::system_clock::time_point::max())
        return -1;
    auto left = deadline - std::chrono::system_clock::now();
    return std::chrono::duration_cast<std::chrono::milliseconds>(left).count();
}

/* Fill `o` with what the server saw of the call. */
void observe(meshd::test::Observed *o, const grpc::ServerContextBase &ctx, int64_t deadline_ms,
             const char *method, uint64_t received, uint64_t bytes)
{
    for (const auto &kv : ctx.client_metadata()) {
        auto *e = o->add_metadata();
        e->set_key(std::string(kv.first.data(), kv.first.size()));
        e->set_value(std::string(kv.second.data(), kv.second.size()));
    }
    o->set_deadline_remaining_ms(deadline_ms);
    o->set_server_id(g_id);
    o->set_method(method);
    o->set_peer(ctx.peer());
    o->set_messages_received(received);
    o->set_bytes_received(bytes);
}

void fill_reply(EchoReply *r, const EchoRequest &req, uint32_t index)
{
    if (req.reply_size())
        r->set_payload(pattern(req.reply_size()));
    else
        r->set_payload(req.payload());
    r->set_server_id(g_id);
    r->set_index(index);
}

Status requested_status(const EchoRequest &req)
{
    if (req.status_code() == 0)
        return Status::OK;
    return Status(static_cast<grpc::StatusCode>(req.status_code()), req.status_message());
}

/* Sleep ms in a sync handler; false if the call was cancelled meanwhile. */
bool sync_sleep(ServerContext *ctx, uint32_t ms)
{
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
        if (ctx->IsCancelled())
            return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return !ctx->IsCancelled();
}

/* Apply a request's call-level settings: reply headers (once) and trailers. */
void apply_metadata(grpc::ServerContextBase *ctx, const EchoRequest &req, bool *headers_sent)
{
    if (!*headers_sent) {
        *headers_sent = true;
        for (const auto &e : req.reply_headers())
            ctx->AddInitialMetadata(e.key(), e.value());
    }
    for (const auto &e : req.reply_trailers())
        ctx->AddTrailingMetadata(e.key(), e.value());
}

/* Ends a sync call: records it as cancelled or finished. */
Status end_call(ServerContext *ctx, const std::string &call_id, Status st)
{
    if (ctx->IsCancelled()) {
        g_record.cancel(call_id);
        return Status::CANCELLED;
    }
    g_record.finished++;
    return st;
}

/* Unary with sleep_ms: waits on its own thread so the callback threads stay free. */
class SleepyUnary : public grpc::ServerUnaryReactor
{
  public:
    SleepyUnary(grpc::CallbackServerContext *ctx, const EchoRequest *req, EchoReply *reply)
        : ctx_(ctx), req_(req), reply_(reply)
    {
        deadline_ms_ = remaining_ms(ctx->deadline());
        g_record.set_active(req->call_id(), true);
        std::thread([this] { Run(); }).detach();
    }

    void OnCancel() override
    {
        std::lock_guard<std::mutex> lock(mu_);
        cancelled_ = true;
        cv_.notify_all();
    }

    void OnDone() override
    {
        delete this;
    }

  private:
    void Run()
    {
        bool cancelled;
        {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait_for(lock, std::chrono::milliseconds(req_->sleep_ms()),
                         [this] { return cancelled_; });
            cancelled = cancelled_;
        }
        g_record.set_active(req_->call_id(), false);
        if (cancelled) {
            g_record.cancel(req_->call_id());
            Finish(Status::CANCELLED);
            return;
        }
        bool sent = false;
        apply_metadata(ctx_, *req_, &sent);
        fill_reply(reply_, *req_, 0);
        if (req_->report())
            observe(reply_->mutable_observed(), *ctx_, deadline_ms_, "/meshd.test.Echo/Unary", 0,
                    0);
        g_record.finished++;
        Finish(requested_status(*req_));
    }

    grpc::CallbackServerContext *ctx_;
    const EchoRequest *req_;
    EchoReply *reply_;
    int64_t deadline_ms_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool cancelled_ = false;
};

class EchoImpl final
    : public meshd::test::Echo::WithCallbackMethod_Unary<meshd::test::Echo::Service>
{
  public:
    grpc::ServerUnaryReactor *Unary(grpc::CallbackServerContext *ctx, const EchoRequest *req,
                                    EchoReply *reply) override
    {
        g_record.started++;
        if (req->sleep_ms())
            return new SleepyUnary(ctx, req, reply);
        bool sent = false;
        apply_metadata(ctx, *req, &sent);
        fill_reply(reply, *req, 0);
        if (req->report())
            observe(reply->mutable_observed(), *ctx, remaining_ms(ctx->deadline()),
                    "/meshd.test.Echo/Unary", 0, 0);
        g_record.finished++;
        auto *r = ctx->DefaultReactor();
        r->Finish(requested_status(*req));
        return r;
    }

    Status ServerStream(ServerContext *ctx, const EchoRequest *req,
                        grpc::ServerWriter<EchoReply> *writer) override
    {
        g_record.started++;
        ActiveCall active;
        active.set(req->call_id());
        int64_t deadline_ms = remaining_ms(ctx->deadline());
        bool sent = false;
        apply_metadata(ctx, *req, &sent);
        if (!sync_sleep(ctx, req->sleep_ms()))
            return end_call(ctx, req->call_id(), Status::CANCELLED);
        uint32_t n = req->reply_count() ? req->reply_count() : 1;
        EchoReply r;
        for (uint32_t i = 0; i < n; i++) {
            if (i && !sync_sleep(ctx, req->reply_interval_ms()))
                break;
            fill_reply(&r, *req, i);
            if (req->report())
                observe(r.mutable_observed(), *ctx, deadline_ms, "/meshd.test.Echo/ServerStream", 0,
                        0);
            if (!writer->Write(r))
                break;
        }
        return end_call(ctx, req->call_id(), requested_status(*req));
    }

    Status ClientStream(ServerContext *ctx, grpc::ServerReader<EchoRequest> *reader,
                        EchoReply *reply) override
    {
        g_record.started++;
        int64_t deadline_ms = remaining_ms(ctx->deadline());
        ActiveCall active;
        EchoRequest first, req;
        uint64_t count = 0, bytes = 0;
        bool sent = false;
        std::string call_id;
        while (reader->Read(&req)) {
            if (count == 0) {
                first = req;
                call_id = req.call_id();
                active.set(call_id);
                apply_metadata(ctx, req, &sent);
            }
            count++;
            bytes += req.payload().size();
            reply->set_payload(std::move(*req.mutable_payload()));
        }
        if (ctx->IsCancelled() || !sync_sleep(ctx, first.sleep_ms()))
            return end_call(ctx, call_id, Status::CANCELLED);
        if (first.reply_size())
            reply->set_payload(pattern(first.reply_size()));
        reply->set_server_id(g_id);
        observe(reply->mutable_observed(), *ctx, deadline_ms, "/meshd.test.Echo/ClientStream",
                count, bytes);
        return end_call(ctx, call_id, requested_status(first));
    }

    Status Bidi(ServerContext *ctx,
                grpc::ServerReaderWriter<EchoReply, EchoRequest> *stream) override
    {
        g_record.started++;
        int64_t deadline_ms = remaining_ms(ctx->deadline());
        ActiveCall active;
        EchoRequest req;
        EchoReply r;
        uint64_t count = 0, bytes = 0;
        uint32_t index = 0;
        bool sent = false;
        std::string call_id;
        while (stream->Read(&req)) {
            count++;
            bytes += req.payload().size();
            if (call_id.empty()) {
                call_id = req.call_id();
                active.set(call_id);
            }
            apply_metadata(ctx, req, &sent);
            if (!sync_sleep(ctx, req.sleep_ms()))
                return end_call(ctx, call_id, Status::CANCELLED);
            uint32_t n = req.reply_count() ? req.reply_count() : 1;
            for (uint32_t i = 0; i < n; i++) {
                if (i && !sync_sleep(ctx, req.reply_interval_ms()))
                    return end_call(ctx, call_id, Status::CANCELLED);
                fill_reply(&r, req, index++);
                if (req.report())
                    observe(r.mutable_observed(), *ctx, deadline_ms, "/meshd.test.Echo/Bidi", count,
                            bytes);
                if (!stream->Write(r))
                    return end_call(ctx, call_id, Status::CANCELLED);
            }
            if (req.status_code())
                return end_call(ctx, call_id, requested_status(req));
        }
        return end_call(ctx, call_id, Status::OK);
    }

    Status Stats(ServerContext *, const meshd::test::StatsRequest *req,
                 meshd::test::StatsReply *reply) override
    {
        std::lock_guard<std::mutex> lock(g_record.mu);
        reply->set_server_id(g_id);
        for (const auto &id : g_record.cancelled)
            reply->add_cancelled_call_ids(id);
        reply->set_calls_started(g_record.started);
        reply->set_calls_finished(g_record.finished);
        for (const auto &id : g_record.active)
            reply->add_active_call_ids(id);
        if (req->reset())
            g_record.cancelled.clear();
        return Status::OK;
    }

    Status SetHealth(ServerContext *, const meshd::test::SetHealthRequest *req,
                     meshd::test::SetHealthReply *) override
    {
        g_server->GetHealthCheckService()->SetServingStatus(req->service(), req->serving());
        return Status::OK;
    }
};

class OtherImpl final : public meshd::test::Other::Service
{
    Status Ping(ServerContext *, const meshd::test::PingRequest *req,
                meshd::test::PingReply *reply) override
    {
        reply->set_text(req->text());
        reply->set_server_id(g_id);
        return Status::OK;
    }
};

void usage()
{
    fprintf(stderr,
            "usage: meshd-echo-server-cc [--host H] [--port P] [--id ID] [--extra-ports N]\n");
    exit(2);
}

} // namespace

int main(int argc, char **argv)
{
    std::string host = "127.0.0.1";
    int port = 0, extra = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--id") == 0)
            g_id = argv[++i];
        else if (strcmp(argv[i], "--host") == 0)
            host = argv[++i];
        else if (strcmp(argv[i], "--extra-ports") == 0)
            extra = atoi(argv[++i]);
        else
            usage();
    }

    /* Block the control signals in every thread; main() takes them with sigwait. */
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGTERM, SIGINT, SIGUSR1, SIGUSR2})
        sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    EchoImpl echo;
    OtherImpl other;
    grpc::ServerBuilder b;
    int selected = 0;
    b.AddListeningPort(host + ":" + std::to_string(port), grpc::InsecureServerCredentials(),
                       &selected);
    std::vector<int> extra_selected(extra > 0 ? extra : 0);
    for (int &p : extra_selected)
        b.AddListeningPort(host + ":0", grpc::InsecureServerCredentials(), &p);
    b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    b.SetMaxReceiveMessageSize(kMaxMessage);
    b.SetMaxSendMessageSize(kMaxMessage);
    b.RegisterService(&echo);
    b.RegisterService(&other);
    std::unique_ptr<grpc::Server> server = b.BuildAndStart();
    if (!server || selected == 0) {
        fprintf(stderr, "meshd-echo-server-cc: cannot listen on %s:%d\n", host.c_str(), port);
        return 1;
    }
    g_server = server.get();
    set_all_health(true);
    if (!extra_selected.empty()) {
        printf("extra ports ");
        for (size_t k = 0; k < extra_selected.size(); k++)
            printf("%s%d", k ? "," : "", extra_selected[k]);
        printf("\n");
    }
    printf("listening on %d\n", selected);
    fflush(stdout);

    for (;;) {
        int sig = 0;
        sigwait(&set, &sig);
        if (sig == SIGUSR1 || sig == SIGUSR2) {
            set_all_health(sig == SIGUSR2);
            continue;
        }
        break;
    }
    server->Shutdown(std::chrono::system_clock::now());
    return 0;
}
