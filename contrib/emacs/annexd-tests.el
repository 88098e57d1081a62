;;; annexd-tests.el --- ERT tests of annexd.el against a real annexd  -*- lexical-binding: t; -*-

;;; Commentary:

;; Run by IntegrationTests' EmacsClientTests (under `make test'), which starts
;; two annexd linked through the SOCKS stand-in and passes:
;;
;;   ANNEXD_SOCKET       the socket of the annexd serving the clone
;;   ANNEXD_TEST_REPO    the clone (its remote `peer' is the other annexd's)
;;   ANNEXD_TEST_SERVER  the repository `peer' serves
;;
;; The clone lacks the content of `got', `watched', `resumed' and
;; `restarted', which the server has; git and git-annex are in PATH.  When
;; annexd exits (a test asks it to), EmacsClientTests starts it again.
;;
;;   emacs --batch -Q -L contrib/emacs -l ert -l annexd-tests.el \
;;     -f ert-run-tests-batch-and-exit

;;; Code:

(require 'ert)
(require 'dired)
(require 'annexd)
(require 'annexd-buffers)

(defun annexd-test--env (name)
  "The environment variable NAME, which the test run must set."
  (or (getenv name) (error "%s is not set: run these tests from EmacsClientTests" name)))

(defun annexd-test--file (name)
  "NAME in the test repository."
  (expand-file-name name (annexd-test--env "ANNEXD_TEST_REPO")))

(defun annexd-test--wait (what pred &optional timeout)
  "Wait until PRED is non-nil (its value), at most TIMEOUT s; fail saying WHAT."
  (let ((deadline (+ (float-time) (or timeout 30))) value)
    (while (and (not (setq value (funcall pred))) (< (float-time) deadline))
      (accept-process-output nil 0.05))
    (or value (ert-fail (format "timed out waiting for %s" what)))))

(defun annexd-test--until-done (transfer)
  "Wait until TRANSFER ends; its last state (transfer.get)."
  (let ((id (alist-get 'id transfer)) last)
    (annexd-test--wait (format "transfer %s to end" id)
                       (lambda ()
                         (setq last (annexd-call "transfer.get" `((id . ,id))))
                         (member (alist-get 'state last) '("done" "failed" "canceled"))))
    last))

(defun annexd-test--row (buffer file)
  "The line of BUFFER whose first column is FILE, or nil."
  (with-current-buffer buffer
    (save-excursion
      (goto-char (point-min))
      (and (re-search-forward (concat "^" (regexp-quote file) " .*$") nil t)
           (match-string 0)))))

(ert-deftest annexd-test-socket-rules ()
  "The socket is found as annex-cli finds it."
  (let ((annexd-socket nil) (process-environment (copy-sequence process-environment)))
    (setenv "ANNEXD_SOCKET" "/x/rpc.sock")
    (should (equal (annexd-socket-path) "/x/rpc.sock"))
    (setenv "ANNEXD_SOCKET" nil)
    (setenv "XDG_RUNTIME_DIR" "/run/user/7")
    (should (equal (annexd-socket-path) "/run/user/7/annexd/rpc.sock"))
    (setenv "XDG_RUNTIME_DIR" "relative")
    (should (equal (annexd-socket-path) (format "/tmp/annexd-%d/rpc.sock" (user-uid))))
    (let ((annexd-socket "/y.sock")) (should (equal (annexd-socket-path) "/y.sock")))))

(ert-deftest annexd-test-errors-in-clear-words ()
  "annexd's errors reach Lisp with their reason, and people in words."
  (let ((err (should-error (annexd-call "no.such") :type 'annexd-error)))
    (should (equal (annexd-error-reason err) "method_not_found")))
  (let ((err (should-error (annexd-get (list (annexd-test--file "nope"))) :type 'user-error)))
    (should (string-match-p "^annexd: no annexed files in nope" (cadr err))))
  (let ((err (should-error (annexd-copy "nosuch" (list (annexd-test--file "got"))) :type 'user-error)))
    (should (string-match-p "no tor-annex remote named nosuch" (cadr err))))
  (let* ((annexd--calls nil) (annexd-socket "/tmp/annexd-emacs-test-none/rpc.sock")
         (err (should-error (annexd-call "daemon.status") :type 'annexd-error)))
    (should (equal (annexd-error-reason err) "daemon_not_running"))
    (should (string-match-p "annexd is not running (no socket at /tmp/annexd-emacs-test-none/rpc.sock)"
                            (cadr err)))))

(ert-deftest annexd-test-get-and-drop-in-dired ()
  "Get then drop the file at point in dired; a second drop says why not."
  (let ((file (annexd-test--file "got")))
    (should-not (file-exists-p file))
    (with-current-buffer (dired-noselect (annexd-test--env "ANNEXD_TEST_REPO"))
      (dired-goto-file file)
      (let ((transfers (annexd-get)))
        (should (equal (mapcar (lambda (tr) (alist-get 'file tr)) transfers) '("got")))
        (should (equal (alist-get 'state (annexd-test--until-done (car transfers))) "done"))
        (should (file-exists-p file)))
      (dired-mark 1)
      (dired-goto-file file)
      (should (equal (dired-get-marked-files) (list file)))
      (let ((results (annexd-drop)))
        (should (equal (mapcar (lambda (r) (alist-get 'dropped r)) results) '(t))))
      (should-not (file-exists-p file))
      (let ((err (should-error (annexd-drop) :type 'user-error)))
        (should (string-match-p "^annexd: could not drop got (got is not present here)" (cadr err)))))))

(ert-deftest annexd-test-transfers-buffer-follows-a-transfer-to-its-end ()
  "The transfers buffer shows a transfer queued after it opened, and its end."
  (let ((buffer (annexd-transfers)) (rows nil))
    (should (with-current-buffer buffer (derived-mode-p 'annexd-transfers-mode)))
    (should-not (annexd-test--row buffer "watched"))
    (let ((record (lambda (_event) (when-let ((row (annexd-test--row buffer "watched")))
                                     (unless (equal row (car rows)) (push row rows))))))
      (add-hook 'annexd-event-functions record 90)
      (unwind-protect
          (progn
            (annexd-get (list (annexd-test--file "watched")))
            (annexd-test--wait "the transfers buffer to show watched done"
                               (lambda () (string-match-p " get  peer +done +100% "
                                                          (or (annexd-test--row buffer "watched") "")))))
        (remove-hook 'annexd-event-functions record)))
    ;; Events alone filled the row: first queued or active, then done.
    (should (string-match-p " \\(queued\\|active\\) " (car (last rows))))
    (should (string-match-p " done " (car rows)))
    ;; Acting on it: a transfer that is done cannot be canceled, and says so.
    (with-current-buffer buffer
      (goto-char (point-min))
      (re-search-forward "^watched ")
      (should (equal (annexd-transfers-cancel) "annexd: not canceled: the transfer is done"))
      (revert-buffer)
      (should (string-match-p " done " (annexd-test--row buffer "watched"))))))

(ert-deftest annexd-test-events-resume-after-a-dropped-connection ()
  "The event stream reconnects and resumes by id: nothing missed or repeated."
  (let ((buffer (annexd-transfers)) (ids nil))
    ;; The stream must have an id to resume from before its connection drops (else it
    ;; rightly starts afresh from a snapshot, after the transfer's events).
    (annexd-test--wait "the event stream to be subscribed"
                       (lambda () (annexd--stream-last-id annexd--stream)))
    (let ((record (lambda (event) (push (alist-get 'id event) ids)))
          (old (annexd--stream-conn annexd--stream)))
      (add-hook 'annexd-event-functions record)
      (unwind-protect
          (progn
            (delete-process (annexd--conn-process old))
            (annexd-get (list (annexd-test--file "resumed")))
            (annexd-test--wait "the transfers buffer to show resumed done"
                               (lambda () (string-match-p " done " (or (annexd-test--row buffer "resumed") ""))))
            (should-not (eq old (annexd--stream-conn annexd--stream))))
        (remove-hook 'annexd-event-functions record)))
    (setq ids (nreverse ids))
    (should ids)
    (should (equal ids (number-sequence (car ids) (car (last ids)))))))

(ert-deftest annexd-test-events-resync-after-annexd-restarts ()
  "annexd restarts: the stream follows its new boot, resync functions run.
EmacsClientTests starts annexd again when it exits."
  (let* ((buffer (annexd-transfers))
         (old-boot (annexd--stream-boot annexd--stream))
         (resyncs 0)
         (count (lambda () (setq resyncs (1+ resyncs)))))
    (should old-boot)
    (add-hook 'annexd-resync-functions count)
    (unwind-protect
        (progn
          (annexd-call-async "daemon.shutdown" nil #'ignore #'ignore)
          (annexd-test--wait "the event stream to follow annexd's new boot"
                             (lambda () (let ((boot (annexd--stream-boot annexd--stream)))
                                          (and boot (not (equal boot old-boot)))))
                             60)
          (should (= resyncs 1))
          (annexd-get (list (annexd-test--file "restarted")))
          (annexd-test--wait "the transfers buffer to show restarted done"
                             (lambda () (string-match-p " done " (or (annexd-test--row buffer "restarted") "")))))
      (remove-hook 'annexd-resync-functions count))))

(ert-deftest annexd-test-copy-to-peer ()
  "A new file of the clone, visited in a buffer, is copied to the peer."
  (let ((default-directory (file-name-as-directory (annexd-test--env "ANNEXD_TEST_REPO"))))
    (should (zerop (call-process "sh" nil nil nil "-c"
                                 "head -c 200000 /dev/urandom > copied && git annex add -q copied && git commit -qm copied")))
    (let ((transfers (with-current-buffer (find-file-noselect (annexd-test--file "copied") t t)
                       (unwind-protect (annexd-copy "peer")  ; this buffer's file
                         (kill-buffer)))))
      (should (equal (mapcar (lambda (tr) (alist-get 'direction tr)) transfers) '("put")))
      (should (equal (alist-get 'state (annexd-test--until-done (car transfers))) "done"))
      (let ((default-directory (file-name-as-directory (annexd-test--env "ANNEXD_TEST_SERVER"))))
        (should (zerop (call-process "git" nil nil nil "annex" "contentlocation"
                                     (alist-get 'key (car transfers)))))))))

(ert-deftest annexd-test-peers-buffer-shows-remote-state ()
  "The peers buffer lists the remote, then its state from events."
  (let* ((repo (annexd-test--env "ANNEXD_TEST_REPO"))
         (buffer (annexd-peers repo)))
    (should (string-match-p "^peer +remote +not watched (watch off) " (annexd-test--row buffer "peer")))
    (annexd-call "repo.set" `((repo . ,repo) (watch . t)))
    (annexd-test--wait "the peers buffer to show peer connected"
                       (lambda () (string-match-p "^peer +remote +connected (watching) "
                                                  (or (annexd-test--row buffer "peer") ""))))
    ;; A buffer opened now knows it without an event (repo.info's connected).
    (kill-buffer buffer)
    (should (string-match-p "^peer +remote +connected (watching) "
                            (annexd-test--row (annexd-peers repo) "peer")))))

(provide 'annexd-tests)

;;; annexd-tests.el ends here
